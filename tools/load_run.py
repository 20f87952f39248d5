"""One ``make load`` run (``tools/load.py``): the Odoo server with two workers
and a cron thread, the data the clients work on, the clients' run, and the
reference hand-off receiver (``tools/handoff_receiver.py``) the script's step 4
hands the orders off to, failing a share of the requests and restarted once.
"""

import os
import signal
import subprocess
import threading
import time
import urllib.request
import xmlrpc.client

from devenv_common import free_port
from handoff_receiver import HandoffReceiver
from load_checks import LoadChecks
from load_clients import Client, ManagerClient
from odoo_harness import ROOT, say

PASSWORD = "load-test-password"
# share of the hand-off requests the receiver answers 503 during the run
HANDOFF_FAIL_RATE = 0.25
# seconds allowed after the run for the last hand-offs to be delivered
HANDOFF_DRAIN = 240


class LoadRun(LoadChecks):
    def __init__(self, args, harness):
        self.args = args
        self.harness = harness
        self.db = args.db
        self.port = args.port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.latencies = []
        self.clients = []
        self.server = None
        self.receiver = None  # the hand-off receiver, started by prepare()
        self.started_at = None  # database time when the clients start
        self.deadline = None  # when the clients stop (time.monotonic())

    # -------------------------------------------------------- server

    def start_server(self):
        log = ROOT / ".run" / f"load-{self.db}.log"
        self.log = log
        cmd = self.harness.odoo_bin(
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
        """The users, customers and deals of the run, and its clients."""
        call = self.admin()
        team_id = self.xmlid(call, "deal_stages", "crm_team_b2b")
        self.prepare_script(call, team_id)
        sellers = self.args.clients // 2
        user_ids = self.prepare_users(call, team_id, sellers)
        owners = [*user_ids, 2]  # the salespeople and the administrator
        deal_ids = self.prepare_deals(call, team_id, owners)
        demo_deals = call(
            "crm.lead", "search", [("team_id", "=", team_id), ("id", "not in", deal_ids)]
        )
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

    @staticmethod
    def xmlid(call, module, name):
        """The id of the record of the XML id ``module.name``."""
        return call(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            ["res_id"],
        )[0]["res_id"]

    def prepare_script(self, call, team_id):
        """A new version of the team's script whose step 4 hands off to the
        receiver: a published version is fixed, so the hand-off is configured
        in a new version, published before the deals are created (the demo
        deals finish on the first one)."""
        script_id = call(
            "crm.deal.script",
            "search",
            [("team_ids", "in", [team_id]), ("state", "=", "published")],
            limit=1,
        )[0]
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
        call("crm.deal.script", "action_publish", [script_id], in_flight="keep")

    def prepare_users(self, call, team_id, sellers):
        """A sales manager and ``sellers`` salespeople of the team."""
        group_id = self.xmlid(call, "sales_team", "group_sale_salesman")
        manager_group_id = self.xmlid(call, "sales_team", "group_sale_manager")
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
        return user_ids

    def prepare_deals(self, call, team_id, owners):
        """The run's deals, of the ``owners`` in turn; half of them start at
        the hand-off step (a supervisor's override): their hand-offs are
        delivered while the clients work, through the receiver's failures and
        its restart."""
        partner_ids = call(
            "res.partner",
            "create",
            [{"name": f"Load customer {i}", "email": f"load{i}@example.com"} for i in range(20)],
        )
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
        call(
            "crm.lead",
            "action_deal_force_stage",
            deal_ids[: len(deal_ids) // 2],
            self.stage_ids[3],
            "Load test: start at the hand-off step",
        )
        return deal_ids

    def run_clients(self):
        """Run the clients to the deadline (the receiver restarted once in the
        middle), then let the last hand-offs go. Returns (seconds, stuck)."""
        started = time.monotonic()
        for client in self.clients:
            client.start()
        threading.Thread(
            target=self.restart_receiver, args=(self.args.seconds / 2,), daemon=True
        ).start()
        for client in self.clients:
            client.join(self.args.seconds + 320)
        elapsed = time.monotonic() - started
        stuck = [c.name for c in self.clients if c.is_alive()]
        say("delivering the last hand-offs ...")
        self.drain_handoffs()
        return elapsed, stuck

    # -------------------------------------------------------- hand-off

    def prepare_handoff(self, call):
        """Step 4 hands the order off to the receiver, acknowledgement required."""
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

    def drain_handoffs(self):
        """Let the cron deliver what is left, the receiver failing no more."""
        self.receiver.state.fail_rate = 0
        deadline = time.monotonic() + HANDOFF_DRAIN
        while time.monotonic() < deadline:
            left = self.harness.pg.query(
                "SELECT count(*) FROM crm_deal_handoff WHERE state IN ('pending', 'sent')",
                dbname=self.db,
            )[0][0]
            if not left:
                return
            time.sleep(5)
