#!/usr/bin/env python3
"""Take the README screenshots from a real Chromium session of the demo.

Needs a served demo database (``make run``, admin/admin) and Chromium. Drives
Chromium through its DevTools protocol: logs in with a session cookie, opens
each page, waits until the web client has rendered it, saves a PNG.

Usage: tools/screenshots.py [--url http://127.0.0.1:8069] [--db deal_stages_demo]
                            [--out docs/screenshots]
"""

import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent

# name -> (url path, CSS selector that shows the page is rendered)
PAGES = {
    "pipeline": ("/odoo/crm", ".o_kanban_record .o_deal_card_step"),
    "deal_form": ("/odoo/crm/{deal_id}", ".o_form_view .o_deal_process_bar"),
    "control_board": (
        "/odoo/action-deal_stages.crm_lead_action_deal_control",
        ".o_deal_control_kanban .o_kanban_record",
    ),
    "time_in_step": (
        "/odoo/action-deal_stages.crm_deal_step_time_report_action",
        ".o_pivot table",
    ),
}


class Chromium:
    def __init__(self, width, height):
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            sys.exit("error: no Chromium on PATH (apt-get install chromium)")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.profile = tempfile.mkdtemp(prefix="deal_stages_shots_")
        self.proc = subprocess.Popen(
            [
                binary, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--window-size={width},{height}",
                f"--remote-debugging-port={port}", f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.ConnectionError, StopIteration):
                time.sleep(0.1)
        else:
            sys.exit("error: Chromium did not start")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_for(self, selector, timeout=30):
        deadline = time.monotonic() + timeout
        expression = f"!!document.querySelector({json.dumps(selector)})"
        while time.monotonic() < deadline:
            result = self.call("Runtime.evaluate", expression=expression)
            if result.get("result", {}).get("value"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"page not rendered: {selector} not found")

    def close(self):
        self.ws.close()
        self.proc.terminate()
        self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


def rpc(session, url, model, method, *args, **kwargs):
    response = session.post(
        f"{url}/web/dataset/call_kw",
        json={
            "jsonrpc": "2.0",
            "params": {"model": model, "method": method, "args": args, "kwargs": kwargs},
        },
        timeout=60,
    ).json()
    if "error" in response:
        raise RuntimeError(response["error"]["data"]["message"])
    return response["result"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8069")
    parser.add_argument("--db", default="deal_stages_demo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    session = requests.Session()
    auth = session.post(
        f"{args.url}/web/session/authenticate",
        json={"params": {"db": args.db, "login": args.login, "password": args.password}},
        timeout=60,
    ).json()
    if "error" in auth:
        sys.exit(f"error: cannot log in: {auth['error']['data']['message']}")

    # the pipeline opens on the user's sales team: show the demo's B2B team
    def xmlid(module, name):
        return rpc(
            session, args.url, "ir.model.data", "search_read",
            [("module", "=", module), ("name", "=", name)], fields=["res_id"],
        )[0]["res_id"]  # fmt: skip

    # the pipeline shows the demo's B2B team, all salespeople (a default filter)
    team = xmlid("deal_stages", "crm_team_b2b")
    uid = auth["result"]["uid"]
    rpc(session, args.url, "res.users", "write", [uid], {"sale_team_id": team})
    pipeline = xmlid("crm", "crm_lead_action_pipeline")
    if not rpc(session, args.url, "ir.filters", "search", [("action_id", "=", pipeline)]):
        rpc(
            session, args.url, "ir.filters", "create",
            {
                "name": "B2B Sales", "model_id": "crm.lead", "action_id": pipeline,
                "domain": repr([("team_id", "=", team)]), "is_default": True,
                "user_ids": [(6, 0, [uid])],
            },
        )  # fmt: skip
    # the deal form: a deal in the middle of the script, with a gate to show
    deals = rpc(
        session, args.url, "crm.lead", "search_read",
        [("team_id", "=", team), ("deal_progress", ">", 30), ("deal_progress", "<", 70)],
        fields=["id"], order="deal_progress, id", limit=1,
    )  # fmt: skip

    width, height = (int(n) for n in args.size.split("x"))
    browser = Chromium(width, height)
    try:
        browser.call("Network.enable")
        browser.call(
            "Network.setCookie",
            name="session_id",
            value=session.cookies["session_id"],
            url=args.url,
        )
        for name, (path, selector) in PAGES.items():
            path = path.format(deal_id=deals[0]["id"] if deals else "")
            browser.call("Page.navigate", url=args.url + path)
            browser.wait_for(selector)
            time.sleep(2)  # let the last RPCs and animations settle
            shot = browser.call("Page.captureScreenshot", format="png")
            target = out / f"{name}.png"
            target.write_bytes(base64.b64decode(shot["data"]))
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
