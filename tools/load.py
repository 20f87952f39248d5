#!/usr/bin/env python3
"""``make load``: deal_stages under concurrent RPC clients and several workers.

Creates a fresh demo database, starts Odoo with ``--workers=2`` and one cron
thread on the loopback interface, runs 10 XML-RPC clients at once for 60 s
(salespeople and an administrator moving deals forward and back, ticking
checklists, changing deals and orders) plus a sales manager moving the
team's deals (other people's) several in one write, stops Odoo, then checks
in the database that nothing was lost or duplicated:

- every deal's stage history is a gap-free chain (each stay ends when the next
  begins and the next starts from the stage it ended in), with exactly one open
  stay per deal that follows a script, in the deal's current stage;
- no deal has two open activities of the same script activity template;
- no deal left a step with a required checklist item not done (gates);
- no activity created by the engine sent Odoo's "assigned to you" message
  of its own: each assignee is told once per transaction (issue 18);
- no server error: faults other than the expected refusals (UserError,
  ValidationError, AccessError) and unanswered requests count as errors;
- hand-offs: step 4 of the script hands the order off to the reference
  receiver (tools/handoff_receiver.py, in this process), which fails a share
  of the requests and is restarted once during the run; at the end every
  hand-off is stored exactly once at the receiver (duplicates sent are
  counted), none is left pending, and no deal left the step without its
  acknowledgement.

Prints the operations per second and the invariants; exits 1 on a violation.

Usage: tools/load.py [--db NAME] [--port N] [--seconds 60] [--clients 10] [--keep]
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client
from collections import Counter

from devenv_common import free_port
from devenv_odoo import ensure_admin_password
from handoff_receiver import HandoffReceiver
from odoo_harness import ROOT, Harness, say

PASSWORD = "load-test-password"
# each stay with the cause of the next one (what left it) and the next step
STAYS_LEFT = """
    WITH l AS (
        SELECT id, lead_id, step_id, date_out,
               lead(cause) OVER w AS left_by,
               lead(step_id) OVER w AS next_step_id
          FROM crm_deal_stage_log
        WINDOW w AS (PARTITION BY lead_id ORDER BY date_in, id))
"""
# share of the hand-off requests the receiver answers 503 during the run
HANDOFF_FAIL_RATE = 0.25
# seconds allowed after the run for the last hand-offs to be delivered
HANDOFF_DRAIN = 240


class Client(threading.Thread):
    """One XML-RPC user doing random deal work until the deadline."""

    def __init__(self, run, name, login, password, deal_ids):
        super().__init__(name=name, daemon=True)
        self.run_ = run
        self.login = login
        self.password = password
        self.deal_ids = deal_ids
        self.ops = Counter()
        self.outcomes = Counter()
        self.errors = []
        self.rng = random.Random(name)

    def call(self, model, method, *args, **kwargs):
        return self.proxy.execute_kw(
            self.run_.db, self.uid, self.password, model, method, list(args), kwargs
        )

    def run(self):
        common = xmlrpc.client.ServerProxy(f"{self.run_.url}/xmlrpc/2/common")
        self.uid = common.authenticate(self.run_.db, self.login, self.password, {})
        self.proxy = xmlrpc.client.ServerProxy(f"{self.run_.url}/xmlrpc/2/object", allow_none=True)
        operations = self.operations()
        funcs = [f for f, _w in operations]
        weights = [w for _f, w in operations]
        while time.monotonic() < self.run_.deadline:
            operation = self.rng.choices(funcs, weights)[0]
            deal_id = self.rng.choice(self.deal_ids)
            started = time.monotonic()
            try:
                operation(deal_id)
                self.outcomes["ok"] += 1
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == 2:
                    self.outcomes["refused (UserError/ValidationError)"] += 1
                elif fault.faultCode in (3, 4):
                    self.outcomes["refused (AccessError)"] += 1
                else:
                    self.outcomes["SERVER ERROR"] += 1
                    self.errors.append(f"{operation.__name__}: {fault.faultString[-600:]}")
            except (OSError, xmlrpc.client.ProtocolError) as exc:
                self.outcomes["SERVER ERROR"] += 1
                self.errors.append(f"{operation.__name__}: {exc!r}")
            self.ops[operation.__name__] += 1
            self.run_.latencies.append(time.monotonic() - started)

    def operations(self):
        """(operation, weight) pairs the client draws from."""
        return [
            (self.move, 45),
            (self.tick, 20),
            (self.change_deal, 15),
            (self.order_change, 10),
            (self.read, 10),
        ]

    # -------------------------------------------------------- operations

    def move(self, deal_id):
        stage_id = self.call("crm.lead", "read", [deal_id], ["stage_id"])[0]["stage_id"]
        stages = self.run_.stage_ids
        index = stages.index(stage_id[0]) if stage_id and stage_id[0] in stages else 0
        step = 1 if self.rng.random() < 0.7 else -1
        target = stages[max(0, min(len(stages) - 1, index + step))]
        self.call("crm.lead", "write", [deal_id], {"stage_id": target})

    def tick(self, deal_id):
        checks = self.call(
            "crm.deal.check", "search", [("lead_id", "=", deal_id), ("done", "=", False)], limit=1
        )
        if checks:
            self.call("crm.deal.check", "write", checks, {"done": True})

    def change_deal(self, deal_id):
        self.call(
            "crm.lead",
            "write",
            [deal_id],
            {
                "expected_revenue": self.rng.randint(1000, 90000),
                "priority": str(self.rng.randint(0, 3)),
            },
        )

    def order_change(self, deal_id):
        deal = self.call("crm.lead", "read", [deal_id], ["deal_step_id"])[0]
        return_step = self.rng.choice(self.run_.step_ids)
        if deal["deal_step_id"] and self.run_.step_ids.index(deal["deal_step_id"][0]) <= 1:
            return_step = deal["deal_step_id"][0]
        self.call(
            "crm.deal.order.change",
            "create",
            {
                "lead_id": deal_id,
                "change_type": "correction",
                "amount_delta": 0,
                "description": "Load test correction",
                "return_step_id": return_step,
            },
        )

    def read(self, deal_id):
        self.call(
            "crm.lead",
            "read",
            [deal_id],
            ["name", "stage_id", "deal_step_id", "deal_progress", "deal_log_ids", "activity_ids"],
        )


class ManagerClient(Client):
    """A sales manager moving the team's deals, owned by others: the deals of
    one stage several in one write, forward mostly (the engine's activities
    go to their salespeople, each told once)."""

    BATCH = 5

    def operations(self):
        return [(self.move_team, 70), (self.read, 30)]

    def move_team(self, deal_id):
        stage_id = self.call("crm.lead", "read", [deal_id], ["stage_id"])[0]["stage_id"]
        stages = self.run_.stage_ids
        if not stage_id or stage_id[0] not in stages:
            return
        deal_ids = self.call(
            "crm.lead",
            "search",
            [("id", "in", self.deal_ids), ("stage_id", "=", stage_id[0])],
            limit=self.BATCH,
        )
        index = stages.index(stage_id[0])
        step = 1 if self.rng.random() < 0.7 else -1
        target = stages[max(0, min(len(stages) - 1, index + step))]
        self.call("crm.lead", "write", deal_ids, {"stage_id": target})


class LoadRun:
    def __init__(self, args):
        self.args = args
        self.db = args.db
        self.port = args.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latencies = []
        self.server = None
        self.receiver = None  # the hand-off receiver, when the addon has hand-offs
        self.started_at = None  # database time when the clients start

    # -------------------------------------------------------- server

    def start_server(self, harness):
        log = ROOT / ".run" / f"load-{self.db}.log"
        self.log = log
        cmd = harness.odoo_bin(
            "-d", self.db, f"--db-filter=^{self.db}$",
            "--http-interface=127.0.0.1", f"--http-port={self.port}",
            "--workers=2", "--max-cron-threads=1",
            "--limit-time-real=300", "--limit-time-cpu=120",
            f"--logfile={log}", "--log-level=info",
            # XML-RPC is what integrators use today; its deprecation notice
            # would be logged at every call
            "--log-handler=odoo.addons.rpc.controllers.xmlrpc:ERROR",
        )  # fmt: skip
        say(f"starting Odoo: 2 workers + cron on {self.url} (log: {log}) ...")
        log.parent.mkdir(exist_ok=True)
        with open(log.with_suffix(".out"), "w") as out:
            self.server = subprocess.Popen(
                cmd, start_new_session=True, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"Odoo stopped at start (see {log})")
            try:
                with urllib.request.urlopen(f"{self.url}/web/health", timeout=5) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise SystemExit(f"Odoo did not answer on {self.url} within 180 s (see {log})")

    def stop_server(self):
        if self.server and self.server.poll() is None:
            # the prefork master stops its workers and cron on SIGTERM
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(10)

    # -------------------------------------------------------- data

    def admin(self):
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common")
        uid = common.authenticate(self.db, "admin", "admin", {})
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object", allow_none=True)

        def call(model, method, *args, **kwargs):
            return proxy.execute_kw(self.db, uid, "admin", model, method, list(args), kwargs)

        return call

    def prepare(self):
        call = self.admin()
        team_id = call(
            "ir.model.data",
            "search_read",
            [("module", "=", "deal_stages"), ("name", "=", "crm_team_b2b")],
            ["res_id"],
        )[0]["res_id"]
        script_id = call(
            "crm.deal.script",
            "search",
            [("team_ids", "in", [team_id]), ("state", "=", "published")],
            limit=1,
        )[0]
        handoff = bool(call("ir.model", "search", [("model", "=", "crm.deal.handoff")]))
        if handoff:
            # a published version is fixed: the hand-off is configured in a
            # new version, published before the deals are created (the demo
            # deals finish on the first one)
            script_id = call("crm.deal.script", "action_new_version", [script_id])
        steps = call(
            "crm.deal.script.step",
            "search_read",
            [("script_id", "=", script_id)],
            ["stage_id"],
            order="sequence, id",
        )
        self.step_ids = [s["id"] for s in steps]
        self.stage_ids = [s["stage_id"][0] for s in steps]
        self.prepare_handoff(call)
        if handoff:
            call("crm.deal.script", "action_publish", [script_id], in_flight="keep")
        group_id = call(
            "ir.model.data",
            "search_read",
            [("module", "=", "sales_team"), ("name", "=", "group_sale_salesman")],
            ["res_id"],
        )[0]["res_id"]
        sellers = self.args.clients // 2
        manager_group_id = call(
            "ir.model.data",
            "search_read",
            [("module", "=", "sales_team"), ("name", "=", "group_sale_manager")],
            ["res_id"],
        )[0]["res_id"]
        call(
            "res.users",
            "create",
            {
                "name": "Load Sales Manager",
                "login": "load_manager",
                "password": PASSWORD,
                "email": "load.manager@example.com",
                "group_ids": [(4, manager_group_id)],
            },
        )
        user_ids = [
            call(
                "res.users",
                "create",
                {
                    "name": f"Load Salesperson {i}",
                    "login": f"load_sales_{i}",
                    "password": PASSWORD,
                    "email": f"load.sales{i}@example.com",
                    "group_ids": [(4, group_id)],
                },
            )
            for i in range(sellers)
        ]
        call(
            "crm.team.member",
            "create",
            [{"crm_team_id": team_id, "user_id": uid} for uid in user_ids],
        )
        partner_ids = call(
            "res.partner",
            "create",
            [{"name": f"Load customer {i}", "email": f"load{i}@example.com"} for i in range(20)],
        )
        owners = [*user_ids, 2]  # the salespeople and the administrator
        deal_ids = call(
            "crm.lead",
            "create",
            [
                {
                    "name": f"Load deal {i}",
                    "type": "opportunity",
                    "team_id": team_id,
                    "user_id": owners[i % len(owners)],
                    "partner_id": partner_ids[i % len(partner_ids)],
                    "expected_revenue": 1000 * (i + 1),
                }
                for i in range(self.args.deals)
            ],
        )
        if self.receiver:
            # half the deals start at the hand-off step (a supervisor's
            # override): their hand-offs are delivered while the clients work,
            # through the receiver's failures and its restart
            call(
                "crm.lead",
                "action_deal_force_stage",
                deal_ids[: len(deal_ids) // 2],
                self.stage_ids[3],
                "Load test: start at the hand-off step",
            )
        demo_deals = call(
            "crm.lead", "search", [("team_id", "=", team_id), ("id", "not in", deal_ids)]
        )
        self.clients = []
        for i in range(self.args.clients):
            if i < sellers:
                login, password = f"load_sales_{i}", PASSWORD
                mine = [d for n, d in enumerate(deal_ids) if owners[n % len(owners)] == user_ids[i]]
            else:
                login, password = "admin", "admin"
                mine = deal_ids + demo_deals
            self.clients.append(Client(self, f"client-{i}", login, password, mine))
        # the manager moves the salespeople's and the administrator's deals
        self.clients.append(
            ManagerClient(self, "manager", "load_manager", PASSWORD, deal_ids + demo_deals)
        )
        return team_id

    def run_clients(self, harness):
        """Run the clients to the deadline (the receiver restarted once in the
        middle), then let the last hand-offs go. Returns (seconds, stuck)."""
        started = time.monotonic()
        for client in self.clients:
            client.start()
        if self.receiver:
            threading.Thread(
                target=self.restart_receiver, args=(self.args.seconds / 2,), daemon=True
            ).start()
        for client in self.clients:
            client.join(self.args.seconds + 320)
        elapsed = time.monotonic() - started
        stuck = [c.name for c in self.clients if c.is_alive()]
        if self.receiver:
            say("delivering the last hand-offs ...")
            self.drain_handoffs(harness)
        return elapsed, stuck

    # -------------------------------------------------------- hand-off

    def prepare_handoff(self, call):
        """Step 4 hands the order off to the receiver, acknowledgement required."""
        if not call("ir.model", "search", [("model", "=", "crm.deal.handoff")]):
            return
        secret = call("crm.deal.handoff.endpoint", "default_get", ["secret"])["secret"]
        self.receiver = HandoffReceiver(secret, fail_rate=HANDOFF_FAIL_RATE).start()
        endpoint_id = call(
            "crm.deal.handoff.endpoint",
            "create",
            {
                "name": "Load receiver",
                "url": self.receiver.url,
                "secret": secret,
                "timeout": 5,
                # quick retries: the run is short
                "retry_delays": "5s",
                "max_attempts": 1000,
            },
        )
        call(
            "crm.deal.script.step",
            "write",
            [self.step_ids[3]],
            {"handoff_endpoint_id": endpoint_id, "handoff_required": True},
        )

    def restart_receiver(self, after):
        """Stop the receiver for a few seconds once, ``after`` seconds in."""
        time.sleep(after)
        say("  restarting the hand-off receiver ...")
        self.receiver.stop()
        time.sleep(3)
        self.receiver.start()

    def drain_handoffs(self, harness):
        """Let the cron deliver what is left, the receiver failing no more."""
        self.receiver.state.fail_rate = 0
        deadline = time.monotonic() + HANDOFF_DRAIN
        while time.monotonic() < deadline:
            left = harness.pg.query(
                "SELECT count(*) FROM crm_deal_handoff WHERE state IN ('pending', 'sent')",
                dbname=self.db,
            )[0][0]
            if not left:
                return
            time.sleep(5)

    def handoff_invariants(self, harness):
        def q(sql, args=()):
            return harness.pg.query(sql, args, dbname=self.db)

        results = []
        rows = q("SELECT idempotency_key, state FROM crm_deal_handoff")
        states = Counter(state for __, state in rows)
        keys = {key for key, state in rows if state != "cancelled"}
        stored = set(self.receiver.state.stored)
        say(
            f"hand-offs: {len(rows):,} ({', '.join(f'{n} {s}' for s, n in states.items())}); "
            f"receiver: {len(self.receiver.state.log):,} requests, {len(stored):,} stored, "
            f"{self.receiver.state.duplicates:,} duplicates sent (deduplicated)"
        )
        results.append(
            ("hand-offs left pending or unacknowledged", len(keys) - states["acknowledged"])
        )
        results.append(("hand-offs never stored by the receiver", len(keys - stored)))
        # one order per deal and step, one change per order change: the same
        # document stored under two keys would be a duplicate the receiver
        # cannot see (a repeated key is a duplicate sent, counted above)
        documents = Counter(
            (
                entry["payload"]["deal"]["id"],
                entry["payload"]["deal"]["step"],
                entry["payload"]["event"],
                (entry["payload"].get("change") or {}).get("name"),
            )
            for entry in self.receiver.state.stored.values()
        )
        results.append(
            ("documents stored twice at the receiver", sum(n - 1 for n in documents.values()))
        )
        past = q(
            STAYS_LEFT
            + """
            SELECT count(DISTINCT l.id)
              FROM l
              JOIN crm_deal_script_step cur
                ON cur.id = l.step_id AND cur.handoff_required
               AND cur.handoff_endpoint_id IS NOT NULL
              LEFT JOIN crm_deal_script_step nxt ON nxt.id = l.next_step_id
             WHERE l.date_out >= %s AND l.left_by IN ('move', 'auto')
               AND (nxt.id IS NULL OR (nxt.sequence, nxt.id) > (cur.sequence, cur.id))
               AND NOT EXISTS (
                   SELECT 1 FROM crm_deal_handoff h
                    WHERE h.lead_id = l.lead_id AND h.step_id = l.step_id
                      AND h.state = 'acknowledged' AND h.date_acknowledged <= l.date_out)
            """,
            [self.started_at],
        )[0][0]
        results.append(("deal left a step before its hand-off was acknowledged", past))
        return results

    # -------------------------------------------------------- invariants

    def invariants(self, harness):
        def q(sql, args=()):
            return harness.pg.query(sql, args, dbname=self.db)

        results = []
        chain = q(
            """
            WITH l AS (
                SELECT lead_id, stage_id, date_out,
                       lead(id) OVER w AS next_id,
                       lead(date_in) OVER w AS next_in,
                       lead(from_stage_id) OVER w AS next_from
                  FROM crm_deal_stage_log
                WINDOW w AS (PARTITION BY lead_id ORDER BY date_in, id))
            SELECT count(*) FILTER (WHERE next_id IS NOT NULL
                                      AND date_out IS DISTINCT FROM next_in),
                   count(*) FILTER (WHERE next_id IS NOT NULL
                                      AND next_from IS DISTINCT FROM stage_id),
                   count(*) FILTER (WHERE next_id IS NOT NULL AND date_out IS NULL),
                   count(*)
              FROM l
            """
        )[0]
        results.append(("history: stay not ending when the next begins", chain[0]))
        results.append(("history: next stay not starting from the stage left", chain[1]))
        results.append(("history: open stay followed by another", chain[2]))
        open_stays = q(
            """
            SELECT count(*) FILTER (WHERE n <> 1),
                   count(*) FILTER (WHERE n = 1 AND open_stage IS DISTINCT FROM stage_id)
              FROM (SELECT lead.id, lead.stage_id, count(log.id) AS n,
                           max(log.stage_id) AS open_stage
                      FROM crm_lead lead
                      LEFT JOIN crm_deal_stage_log log
                        ON log.lead_id = lead.id AND log.date_out IS NULL
                     WHERE lead.deal_script_id IS NOT NULL AND lead.active
                       AND lead.type = 'opportunity'
                     GROUP BY lead.id) per_deal
            """
        )[0]
        results.append(("deals with a script without exactly one open stay", open_stays[0]))
        results.append(("open stay in another stage than the deal's", open_stays[1]))
        duplicates = q(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM mail_activity
                 WHERE res_model = 'crm.lead' AND deal_script_activity_id IS NOT NULL
                   AND active
                 GROUP BY res_id, deal_script_activity_id HAVING count(*) > 1) d
            """
        )[0][0]
        results.append(("duplicate open activity per (deal, template)", duplicates))
        # a stay is left by the cause of the next stay: only moves and
        # automatic advances go through the gate (override, order change,
        # lost and restore do not), and only forward (to a later step or
        # out of the script): going back to a return step needs nothing;
        # stays left before the run (demo history) are not the clients'
        past_gate = q(
            STAYS_LEFT
            + """
            SELECT count(DISTINCT l.id)
              FROM l
              JOIN crm_deal_script_step cur ON cur.id = l.step_id
              LEFT JOIN crm_deal_script_step nxt ON nxt.id = l.next_step_id
              JOIN crm_deal_check chk
                ON chk.lead_id = l.lead_id AND chk.step_id = l.step_id
              JOIN crm_deal_script_check tmpl ON tmpl.id = chk.check_id
             WHERE l.date_out >= %s AND l.left_by IN ('move', 'auto')
               AND (nxt.id IS NULL OR (nxt.sequence, nxt.id) > (cur.sequence, cur.id))
               AND tmpl.required
               AND (NOT chk.done OR chk.done_date > l.date_out)
            """,
            [self.started_at],
        )[0][0]
        results.append(("deal left a step with a required check not done", past_gate))
        # Odoo's own message per assigned activity ("... assigned to you"):
        # the engine's activities are told once per transaction instead
        per_activity, told_once = q(
            """
            SELECT count(*) FILTER (WHERE subject LIKE %s),
                   count(*) FILTER (WHERE subject LIKE %s OR subject LIKE %s)
              FROM mail_message
             WHERE message_type = 'user_notification' AND create_date >= %s
            """,
            [
                "%assigned to you",
                "New activities for you%",
                "New activity for you%",
                self.started_at,
            ],
        )[0]
        say(f"assignees told of their new activities: {told_once:,} notifications")
        results.append(("engine activity notified one by one (assigned to you)", per_activity))
        return results, chain[3]

    def server_log_errors(self):
        """(errors, retried): ERROR entries of the server log.

        Serialization failures are not errors: Odoo retries the request that
        hit one, and a cron job that hit one is rolled back and runs again.
        """
        errors, retried = [], 0
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return errors, retried
        for index, line in enumerate(lines):
            if " ERROR " not in line and " CRITICAL " not in line:
                continue
            if "bad query" in line or "could not serialize" in line:
                retried += 1
                continue
            # the entry's traceback runs until the next log line
            entry = []
            for follow in lines[index + 1 : index + 80]:
                if follow[:4].isdigit() and " INFO " in follow[:40] or " ERROR " in follow[:40]:
                    break
                entry.append(follow)
            if any("SerializationFailure" in text for text in entry):
                retried += 1
                continue
            errors.append(line[:300])
        return errors, retried


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("LOAD_DB", "deal_stages_load"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOAD_PORT", "0")))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("LOAD_SECONDS", "60")))
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--deals", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the existing database")
    args = parser.parse_args()
    harness = Harness()
    run = LoadRun(args)
    try:
        if not args.reuse:
            say(f"creating demo database {args.db} with deal_stages ...")
            seconds = harness.create_db(args.db, demo=True)
            say(f"  installed in {seconds:.0f} s")
        ensure_admin_password(harness.pg, args.db)
        run.start_server(harness)
        run.prepare()
        say(f"{len(run.clients)} clients for {args.seconds} s ...")
        run.deadline = time.monotonic() + args.seconds
        # the history the clients write begins here (demo data holds older stays)
        run.started_at = harness.pg.query("SELECT now() AT TIME ZONE 'utc'", dbname=args.db)[0][0]
        elapsed, stuck = run.run_clients(harness)
    finally:
        run.stop_server()
        if run.receiver:
            run.receiver.stop()
    ops, outcomes, errors = Counter(), Counter(), []
    for client in run.clients:
        ops.update(client.ops)
        outcomes.update(client.outcomes)
        errors += client.errors
    total = sum(ops.values())
    latencies = sorted(run.latencies)
    say("")
    say(f"make load - {len(run.clients)} XML-RPC clients, {elapsed:.0f} s, Odoo --workers=2 + cron")
    say(f"operations: {total:,} ({total / elapsed:.1f}/s)")
    for name, count in ops.most_common():
        say(f"  {name:<14} {count:6,}  ({count / elapsed:.1f}/s)")
    if latencies:
        median = latencies[len(latencies) // 2]
        p95 = latencies[int(len(latencies) * 0.95)]
        say(f"latency: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    for name, count in outcomes.most_common():
        say(f"  {name:<38} {count:6,}")
    invariants, stays = run.invariants(harness)
    if run.receiver:
        invariants += run.handoff_invariants(harness)
    log_errors, retried = run.server_log_errors()
    say(f"  serialization failures rolled back and retried: {retried}")
    invariants.append(("server errors (faults, no answer)", outcomes["SERVER ERROR"]))
    invariants.append(("errors in the server log (not retried)", len(log_errors)))
    invariants.append(("clients stuck at the end", len(stuck)))
    say(f"invariants ({stays:,} stays checked):")
    failed = False
    for name, value in invariants:
        if value is None:
            say(f"  n/a   {name}")
            continue
        status = "ok  " if not value else "FAIL"
        failed = failed or bool(value)
        say(f"  {status}  {name}: {value}")
    for line in (errors + log_errors)[:10]:
        say(f"  error: {line}")
    if not args.keep:
        harness.drop_db(args.db)
    harness.close()
    if total == 0:
        say("load: no operation ran")
        return 1
    say("load: " + ("FAIL" if failed else "all invariants hold, no server error"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
