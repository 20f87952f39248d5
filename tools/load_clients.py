"""The XML-RPC clients of ``make load`` (``tools/load.py``).

Each client is a thread doing random deal work as one user until the run's
deadline: salespeople and an administrator move deals forward and back, tick
checklist items, change deals and create order changes; a sales manager moves
the team's deals (other people's) several in one write. Refusals (UserError,
ValidationError, AccessError) are counted as such; any other fault or an
unanswered request is a server error.
"""

import random
import threading
import time
import xmlrpc.client
from collections import Counter


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
        self.call("crm.lead", "write", [deal_id], {"stage_id": self.next_stage(index)})

    def next_stage(self, index):
        """The stage after the ``index``-th of the script 7 times in 10, else
        the one before (within the script's stages)."""
        stages = self.run_.stage_ids
        step = 1 if self.rng.random() < 0.7 else -1
        return stages[max(0, min(len(stages) - 1, index + step))]

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
        step_id = deal["deal_step_id"] and deal["deal_step_id"][0]
        # a demo deal stays on the first version (in_flight="keep"): its
        # own step is the return step it may have
        if step_id and (
            step_id not in self.run_.step_ids or self.run_.step_ids.index(step_id) <= 1
        ):
            return_step = step_id
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
        target = self.next_stage(stages.index(stage_id[0]))
        self.call("crm.lead", "write", deal_ids, {"stage_id": target})
