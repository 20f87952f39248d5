#!/usr/bin/env python3
"""Reference receiver of deal_stages hand-offs (a starting point for integrators).

A small HTTP server (standard library; ``standardwebhooks`` when installed) that:

- verifies the Standard Webhooks signature of each request (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``; secret ``whsec_<base64>``)
  and refuses a bad one with 401;
- stores each ``webhook-id`` once: a request repeating a stored id gets the
  same answer again (or 409 with ``--duplicate-status 409``), nothing is
  stored twice;
- answers ``{"external_ref": "DOC-<n>"}`` (the hand-off is acknowledged at
  once), or 202 without a document id (``--accept``: the receiver
  acknowledges later over Odoo's JSON-2 API);
- can be told to fail: a planned list of statuses, a share of 503 answers,
  a delay before answering (the sender's timeout).

Used by the tests (in process: ``HandoffReceiver(secret).start()``) and by
``make load``; run alone::

    python tools/handoff_receiver.py --secret whsec_... --port 8099 --fail-rate 0.2

The 1C side does the same in an HTTP service: see the readme, "Hand-off".
"""

import argparse
import base64
import hashlib
import hmac
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:  # the same check by hand (the specification is short)
    Webhook = None

    class WebhookVerificationError(Exception):
        pass


TOLERANCE = 5 * 60  # seconds a timestamp may be off (replays are refused)


def verify(secret, body, headers):
    """Raise WebhookVerificationError unless the request is signed with ``secret``."""
    if Webhook is not None:
        Webhook(secret).verify(body, headers, json_parse=False)
        return
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise WebhookVerificationError("Missing required headers")
    if abs(time.time() - int(timestamp)) > TOLERANCE:
        raise WebhookVerificationError("Message timestamp too old or too new")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if not any(hmac.compare_digest(expected, sig) for sig in signatures.split(" ")):
        raise WebhookVerificationError("No matching signature found")


class ReceiverState:
    """What the receiver got and how it should answer (thread-safe)."""

    def __init__(self, secret, accept=False, duplicate_status=200, fail_rate=0.0, delay=0.0):
        self.secret = secret
        self.accept = accept
        self.duplicate_status = duplicate_status
        self.fail_rate = fail_rate
        self.delay = delay
        self.planned = []  # statuses answered to the next requests, in order
        self.stored = {}  # webhook-id -> {"payload", "external_ref", "headers"}
        self.log = []  # (webhook-id, status) of every request
        self.duplicates = 0  # requests repeating a stored webhook-id
        self.lock = threading.Lock()
        self.random = random.Random(17)

    def plan(self, *statuses):
        with self.lock:
            self.planned.extend(statuses)

    def handle(self, body, headers):
        """(status, answer dict, extra headers) for one request."""
        headers = {key.lower(): value for key, value in headers.items()}
        key = headers.get("webhook-id", "")
        try:
            verify(self.secret, body, headers)
        except (WebhookVerificationError, ValueError) as error:
            return self._logged(key, 401, {"error": f"bad signature: {error}"})
        with self.lock:
            planned = self.planned.pop(0) if self.planned else None
            if planned is None and self.fail_rate and self.random.random() < self.fail_rate:
                planned = 503
            if planned is not None:
                return self._logged(key, planned, {"error": "planned failure"}, locked=True)
            if key in self.stored:
                # already stored: never twice; the same answer as the first time
                self.duplicates += 1
                ref = self.stored[key]["external_ref"]
                status = self.duplicate_status
                answer = {"external_ref": ref} if ref else {}
                return self._logged(key, status, answer, locked=True)
            try:
                payload = json.loads(body)
            except ValueError:
                return self._logged(key, 400, {"error": "not JSON"}, locked=True)
            ref = "" if self.accept else f"DOC-{len(self.stored) + 1}"
            self.stored[key] = {"payload": payload, "external_ref": ref, "headers": headers}
            if self.accept:
                return self._logged(key, 202, {"status": "accepted"}, locked=True)
            return self._logged(key, 200, {"external_ref": ref}, locked=True)

    def _logged(self, key, status, answer, locked=False):
        if locked:
            self.log.append((key, status))
        else:
            with self.lock:
                self.log.append((key, status))
        extra = {"Retry-After": "1"} if status in (429, 503) else {}
        return status, answer, extra


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if state.delay:
            time.sleep(state.delay)
        status, answer, extra = state.handle(body, dict(self.headers.items()))
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a sender that gave up (its timeout) closed the connection: not an error here
        return


class HandoffReceiver:
    """The receiver in a thread of the current process (tests, make load).

    ``stop()`` then ``start()`` restarts it on the same port with what it
    stored (a restart of the receiver, not a loss of its data).
    """

    def __init__(self, secret, host="127.0.0.1", port=0, **options):
        self.state = ReceiverState(secret, **options)
        self.host, self.port = host, port
        self.server = None
        self.thread = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/handoff"

    def start(self):
        self.server = _Server((self.host, self.port), _Handler)
        self.server.state = self.state
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--secret", required=True, help="whsec_<base64>, as on the endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--accept", action="store_true", help="answer 202 without a document id")
    parser.add_argument("--duplicate-status", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of 503 answers")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    args = parser.parse_args()
    receiver = HandoffReceiver(
        args.secret,
        host=args.host,
        port=args.port,
        accept=args.accept,
        duplicate_status=args.duplicate_status,
        fail_rate=args.fail_rate,
        delay=args.delay,
    ).start()
    print(f"receiving hand-offs at {receiver.url} (Ctrl+C stops)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
