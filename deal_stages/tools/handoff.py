"""Delivery of hand-offs: signing, classification of answers, backoff.

Plain Python (no Odoo model): ``crm.deal.handoff`` prepares the requests and
records the outcomes, this module makes the HTTP calls and says what each
answer means. Signatures follow the Standard Webhooks specification
(https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` = ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
one signature per active secret, separated by spaces.
"""

import base64
import json
import logging
import math
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from standardwebhooks.webhooks import Webhook

_logger = logging.getLogger(__name__)

# hand-offs claimed and sent per committed batch of the cron
BATCH_SIZE = 100
# parallel requests of a batch (the receivers are remote: waiting, not CPU)
THREADS = 8
# a claimed row comes back after its timeout and this margin if the worker
# that claimed it died before recording the outcome (same key: the receiver
# deduplicates)
LEASE_MARGIN = 60
# states a person has to act on (activity, board "at risk")
PROBLEM_STATES = ("failed", "dead")
# the payload's format; a receiver checks it before reading the rest
SCHEMA_VERSION = "deal_stages.handoff/1"
# seconds before attempts 2, 3, ...; the last delay repeats ("then daily")
DEFAULT_RETRY_DELAYS = (60, 300, 900, 3600, 21600, 86400)
DEFAULT_MAX_ATTEMPTS = 10
# answers that a person must look at: the request itself is wrong
FAILED_STATUSES = frozenset({400, 401, 403, 404, 410, 413, 415, 422})
# "already have it": the receiver stored this key before
DUPLICATE_STATUS = 409
RETRY_STATUSES = frozenset({408, 425, 429})
# what a 2xx JSON body may call the receiver's document
EXTERNAL_REF_KEYS = ("external_ref", "document_id", "id", "number")
# the receiver's answer kept on the row, for people to read
ANSWER_LIMIT = 2000
# a retry is never sooner than this, whatever Retry-After says
MIN_DELAY = 5
# the longest Retry-After honoured (a week): beyond it the schedule applies
MAX_RETRY_AFTER = 7 * 86400
# the longest configurable wait between two attempts (a year)
MAX_DELAY = 365 * 86400
# what HTTP accepts in an extra header (RFC 9110): a token as the name, visible
# ASCII as the value (spaces and tabs inside), no line break
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HEADER_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?")

OUTCOME_ACKNOWLEDGED = "acknowledged"
OUTCOME_SENT = "sent"
OUTCOME_RETRY = "retry"
OUTCOME_FAILED = "failed"


def new_secret():
    """A fresh signing secret in Standard Webhooks form (``whsec_<base64>``)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret):
    """Raise ValueError unless ``secret`` is ``whsec_<base64>`` of 16+ bytes."""
    if not secret.startswith("whsec_"):
        raise ValueError("the secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len("whsec_") :], validate=True)
    except ValueError as error:
        raise ValueError("the part after whsec_ is not base64") from error
    if len(key) < 16:
        raise ValueError("the secret must hold at least 16 bytes")


class HeaderError(ValueError):
    """An extra header HTTP cannot carry; ``name`` says which (never its value:
    it is often a credential)."""

    def __init__(self, name):
        super().__init__(name)
        self.name = name


def check_headers(headers):
    """Raise HeaderError for the first header of ``headers`` (a dict of texts)
    whose name or value HTTP cannot carry."""
    for name, value in headers.items():
        if not (HEADER_NAME.fullmatch(name) and HEADER_VALUE.fullmatch(value)):
            raise HeaderError(name)


def sign(secrets_, msg_id, timestamp, body):
    """The ``webhook-signature`` header: one ``v1,<sig>`` per secret.

    :param secrets_: the active secrets (current first, then the previous one
        during a rotation)
    :param timestamp: int, seconds since the epoch
    :param body: bytes, exactly as sent
    """
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets_ if secret)


def encode_payload(payload):
    """The frozen body: compact, keys sorted, UTF-8 (signed byte for byte)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def retry_delay(attempts, delays=DEFAULT_RETRY_DELAYS, retry_after=None, rng=random):
    """Seconds to wait before the next attempt, after ``attempts`` failed ones.

    Exponential steps from ``delays`` (the last one repeats), with +/-20 %
    jitter so that many deliveries failed together do not come back together.
    A ``Retry-After`` from the receiver wins when it asks for longer.
    """
    delays = tuple(delays) or DEFAULT_RETRY_DELAYS
    base = delays[min(max(attempts, 1), len(delays)) - 1]
    delay = base * rng.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return max(int(delay), MIN_DELAY)


def parse_delays(text):
    """``"60, 300, 1h, 1d"`` -> (60, 300, 3600, 86400); ValueError when unreadable."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    delays = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip().lower()
        if not part:
            continue
        factor = units.get(part[-1])
        number = part[:-1] if factor else part
        value = float(number) * (factor or 1)
        if not (math.isfinite(value) and 0 < value <= MAX_DELAY):
            raise ValueError(part)
        delays.append(int(value))
    if not delays:
        raise ValueError(text)
    return tuple(delays)


def parse_retry_after(value, now=None):
    """Seconds asked by a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(int((when - now).total_seconds()), 0)


@dataclass
class Delivery:
    """One request to make: everything read from the database beforehand."""

    handoff_id: int
    url: str
    key: str
    body: bytes
    secrets: tuple
    headers: dict = field(default_factory=dict)
    timeout: float = 10.0
    # why it cannot be sent as configured (not sent, the row fails)
    problem: str = ""


@dataclass
class Outcome:
    """What an attempt gave, in the terms of ``crm.deal.handoff``."""

    kind: str
    status: int = 0
    error: str = ""
    external_ref: str = ""
    retry_after: int | None = None
    answer: str = ""


def build_headers(delivery, timestamp=None):
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        # extra headers first: the signature headers cannot be overridden
        **delivery.headers,
        "Content-Type": "application/json",
        "User-Agent": "deal_stages-handoff/1",
        "webhook-id": delivery.key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(delivery.secrets, delivery.key, timestamp, delivery.body),
    }
    return headers


def external_ref_of(text):
    """The receiver's document id from a JSON answer, or ""."""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    for key in EXTERNAL_REF_KEYS:
        value = data.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:256]
    return ""


def classify(status, text="", headers=None):
    """The outcome of an HTTP answer (see the readme's retry table)."""
    headers = headers or {}
    answer = (text or "")[:ANSWER_LIMIT]
    if 200 <= status < 300:
        ref = external_ref_of(text)
        return Outcome(
            OUTCOME_ACKNOWLEDGED if ref else OUTCOME_SENT, status, external_ref=ref, answer=answer
        )
    if status == DUPLICATE_STATUS:
        # the receiver has this key already: delivered, its id if it says it
        return Outcome(
            OUTCOME_ACKNOWLEDGED, status, external_ref=external_ref_of(text), answer=answer
        )
    error = f"HTTP {status}: {answer[:300]}".strip()
    if status in RETRY_STATUSES or status >= 500:
        return Outcome(
            OUTCOME_RETRY,
            status,
            error=error,
            retry_after=parse_retry_after(headers.get("Retry-After")),
            answer=answer,
        )
    # 400, 401, 403, 404, 422 and any other: the request is refused as it
    # stands; retrying the same bytes would give the same answer
    return Outcome(OUTCOME_FAILED, status, error=error, answer=answer)


def deliver(delivery, session=None):
    """Make one request; never raises (the outcome says what happened)."""
    if delivery.problem:
        return Outcome(OUTCOME_FAILED, error=delivery.problem)
    http = session or requests
    try:
        response = http.post(
            delivery.url,
            data=delivery.body,
            headers=build_headers(delivery),
            timeout=delivery.timeout,
            allow_redirects=False,
        )
    except requests.Timeout as error:
        return Outcome(OUTCOME_RETRY, error=f"Timeout after {delivery.timeout} s: {error}"[:500])
    except requests.exceptions.InvalidHeader:
        # its message quotes the header's value (a credential): not kept
        return Outcome(
            OUTCOME_FAILED, error="An extra header of the endpoint is not valid in HTTP."
        )
    except requests.RequestException as error:
        return Outcome(OUTCOME_RETRY, error=f"{type(error).__name__}: {error}"[:500])
    except Exception as error:  # one bad request never stops the batch
        # e.g. a header the HTTP client cannot encode; the message may quote
        # a header's value: in the server log only
        _logger.exception("Hand-off %s: request not made", delivery.handoff_id)
        return Outcome(
            OUTCOME_FAILED,
            error=f"The request could not be made ({type(error).__name__}): see the server log.",
        )
    return classify(response.status_code, response.text, response.headers)


def next_attempt(now, attempts, delays, retry_after=None):
    return now + timedelta(seconds=retry_delay(attempts, delays, retry_after))
