"""What every row of ``make bench`` (``tools/bench.py``) shares.

The measure (time and queries of one request, as a commit does it), the
bench's cursors, the common data (users, two stages, one team per variant, the
script of the deal_stages team, the native automation rule, customers) and the
stage move of each variant:

- *vanilla*: the stage change on deals without a script;
- *native*: an automation rule "Stage is set to" with three "Create activity"
  actions and one "Send email" action, built as an admin would;
- *floor*: the vanilla move, then one ``create`` of all the activities and one
  batch of template emails - what a perfect engine could approach;
- *addon* (deal_stages): deals of a team whose script step creates 3
  activities, sends 1 customer email and logs 1 history row.

Odoo is imported where it is used: ``odoo_harness`` makes it importable first.
"""

import statistics
import time
from contextlib import contextmanager
from datetime import timedelta

from odoo_harness import say

SINGLE_WARMUP = 3
SINGLE_RUNS = 15
BULK_SIZES = (200, 1000)
VARIANTS = ("vanilla", "native", "floor", "addon")
LABELS = {
    "vanilla": "vanilla",
    "native": "native rules",
    "floor": "floor",
    "addon": "deal_stages",
}
SUMMARIES = ["Issue the invoice", "Send the invoice", "Call the customer"]


class Measure:
    __slots__ = ("queries", "seconds")

    def __init__(self, seconds, queries):
        self.seconds = seconds
        self.queries = queries

    @classmethod
    def median(cls, measures):
        """The median time and the median query count of ``measures``."""
        return cls(
            statistics.median(m.seconds for m in measures),
            round(statistics.median(m.queries for m in measures)),
        )

    @property
    def ms(self):
        return self.seconds * 1000

    def __str__(self):
        if self.seconds >= 10:
            duration = f"{self.seconds:.1f} s"
        elif self.seconds >= 1:
            duration = f"{self.seconds:.2f} s"
        else:
            duration = f"{self.ms:.0f} ms"
        return f"{duration} / {self.queries:,} q"


class BenchBase:
    """Cursors, measures, results and the data every row uses."""

    def __init__(self, registry, quick=False):
        self.registry = registry
        self.quick = quick
        self.notes = []
        self.results = []  # (row, {variant: text}, target text, ok or None)
        self.failed = False
        self.tag = int(time.time())  # unique logins: --reuse may run on used data

    # ------------------------------------------------------------ helpers

    @contextmanager
    def env(self, uid=None):
        """An environment on a cursor of its own, committed at the end."""
        from odoo import SUPERUSER_ID, api

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            if uid:
                env = env(user=uid, context=env["res.users"].browse(uid).context_get())
            yield env
            cr.commit()

    @staticmethod
    def measured(env, func):
        """Run ``func`` as one request: cold record cache, flush + precommit."""
        cr = env.cr
        env.flush_all()
        cr.commit()
        env.invalidate_all()
        queries = cr.sql_log_count
        started = time.perf_counter()
        func()
        env.flush_all()
        cr.precommit.run()  # tracking values, followers... as a commit does
        env.flush_all()
        seconds = time.perf_counter() - started
        measure = Measure(seconds, cr.sql_log_count - queries)
        cr.commit()
        return measure

    def measured_request(self, uid, work):
        """``work(env)`` measured as one request of a server: on a cursor of
        its own, as ``uid``. A cursor kept for many requests keeps hundreds
        of environments alive in its transaction, and every ``with_context``
        or ``sudo`` then searches them: code that makes many (native rules)
        would look slower than it is in a server."""
        with self.env(uid=uid) as env:
            return self.measured(env, lambda: work(env))

    def add(self, row, values, target, ok):
        self.results.append((row, values, target, ok))
        if ok is False:
            self.failed = True

    def add_variants(self, row, result, target, ok):
        """A row measured four ways: ``result`` is {variant: Measure}."""
        self.add(row, {v: str(result[v]) for v in VARIANTS}, target, ok)

    @staticmethod
    def per_deal_above(result, base, size, variant="addon"):
        """Queries per deal ``variant`` made above ``base`` moving ``size`` deals."""
        return (result[variant].queries - result[base].queries) / size

    def add_time(self, row, measure, limit):
        """A row of deal_stages alone whose target is a time: < ``limit`` s."""
        self.add(
            row,
            {"addon": str(measure)},
            f"< {limit:g} s ({measure.seconds:.2f} s)",
            measure.seconds < limit,
        )

    # ------------------------------------------------------------ data

    def setup(self, deals=True, variants=VARIANTS):
        say("setting up teams, stages, script, rules, templates ...")
        with self.env() as env:
            env["res.lang"]._activate_lang("en_US")
            self._setup_users(env)
            stages = env["crm.stage"].create(
                [
                    {"name": "Bench: contract", "sequence": 1001},
                    {"name": "Bench: invoicing", "sequence": 1002},
                ]
            )
            self.stage_a, self.stage_b = stages.ids
            company = env.ref("base.main_company")
            teams = env["crm.team"].create(
                [{"name": f"Bench {LABELS[v]}", "company_id": company.id} for v in VARIANTS]
                + [{"name": "Bench SLA", "company_id": company.id}]
            )
            self.team = dict(zip(VARIANTS, teams.ids, strict=False))
            self.team_sla = teams[-1].id
            template = env["mail.template"].create(
                {
                    "name": "Bench: invoice issued",
                    "model_id": env["ir.model"]._get_id("crm.lead"),
                    "subject": "Invoice issued for {{ object.name }}",
                    "partner_to": "{{ object.partner_id.id }}",
                    "body_html": "<p>Hello <t t-out='object.partner_id.name'/>,</p>"
                    "<p>the invoice for <t t-out='object.name'/> is issued.</p>",
                }
            )
            self.template = template.id
            self.summaries = SUMMARIES
            self.activity_type = env.ref("mail.mail_activity_data_todo").id
            self._setup_script(env)
            self._setup_native_rule(env)
            self.partners = (
                env["res.partner"]
                .create(
                    [
                        {"name": f"Bench customer {i}", "email": f"customer{i}@example.com"}
                        for i in range(50)
                    ]
                )
                .ids
            )
        self.deals = {}
        if not deals:
            return
        sizes = {"single": SINGLE_WARMUP + SINGLE_RUNS, **{n: n for n in BULK_SIZES}}
        say("creating deals ...")
        for variant in variants:
            for key, count in sizes.items():
                self.deals[variant, key] = self.make_deals(self.team[variant], count)

    def _setup_users(self, env):
        """The salesperson who moves the deals and a sales manager."""
        from odoo import Command

        company = env.ref("base.main_company")
        users = (
            env["res.users"]
            .with_context(no_reset_password=True, mail_create_nolog=True)
            .create(
                [
                    {
                        "name": "Bench Salesperson",
                        "login": f"bench_sales_{self.tag}",
                        "email": "bench.sales@example.com",
                        "group_ids": [
                            Command.link(env.ref("sales_team.group_sale_salesman_all_leads").id)
                        ],
                        "company_id": company.id,
                        "company_ids": [Command.link(company.id)],
                    },
                    {
                        "name": "Bench Supervisor",
                        "login": f"bench_manager_{self.tag}",
                        "email": "bench.manager@example.com",
                        "group_ids": [Command.link(env.ref("sales_team.group_sale_manager").id)],
                        "company_id": company.id,
                        "company_ids": [Command.link(company.id)],
                    },
                ]
            )
        )
        self.mover, self.manager = users.ids

    def _setup_script(self, env):
        """The deal_stages team's script: step 2 creates 3 activities and
        sends the customer email."""
        from odoo import Command

        script = env["crm.deal.script"].create(
            {
                "name": "Bench script",
                "team_ids": [Command.link(self.team["addon"])],
                "step_ids": [
                    Command.create({"sequence": 1, "stage_id": self.stage_a}),
                    Command.create(
                        {
                            "sequence": 2,
                            "stage_id": self.stage_b,
                            "mail_template_id": self.template,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "sequence": index,
                                        "activity_type_id": self.activity_type,
                                        "summary": summary,
                                        "deadline_days": index + 1,
                                    }
                                )
                                for index, summary in enumerate(self.summaries)
                            ],
                        }
                    ),
                ],
            }
        )
        self.script = script.id

    def _setup_native_rule(self, env):
        """What an admin builds in Settings > Automation Rules for the same work."""
        model_id = env["ir.model"]._get_id("crm.lead")
        rule = env["base.automation"].create(
            {
                "name": "Bench: invoicing stage set",
                "model_id": model_id,
                "trigger": "on_stage_set",
                "trg_field_ref": self.stage_b,
            }
        )
        rule.filter_domain = repr(
            [("stage_id", "=", self.stage_b), ("team_id", "=", self.team["native"])]
        )
        env["ir.actions.server"].create(
            [
                {
                    "name": summary,
                    "model_id": model_id,
                    "base_automation_id": rule.id,
                    "usage": "base_automation",
                    "state": "next_activity",
                    "activity_type_id": self.activity_type,
                    "activity_summary": summary,
                    "activity_date_deadline_range": index + 1,
                    "activity_date_deadline_range_type": "days",
                    "activity_user_type": "generic",
                    "activity_user_field_name": "user_id",
                }
                for index, summary in enumerate(self.summaries)
            ]
            + [
                {
                    "name": "Send the invoice email",
                    "model_id": model_id,
                    "base_automation_id": rule.id,
                    "usage": "base_automation",
                    "state": "mail_post",
                    "template_id": self.template,
                    "mail_post_method": "email",
                }
            ]
        )

    def make_deals(self, team_id, count, stage_id=None, chunk=1000):
        ids = []
        with self.env() as env:
            leads = env["crm.lead"].with_context(
                tracking_disable=True, mail_create_nolog=True, mail_notrack=True
            )
            for start in range(0, count, chunk):
                ids += leads.create(
                    [
                        {
                            "name": f"Bench deal {team_id}-{index}",
                            "type": "opportunity",
                            "team_id": team_id,
                            "user_id": self.mover,
                            "stage_id": stage_id or self.stage_a,
                            "partner_id": self.partners[index % len(self.partners)],
                            "expected_revenue": 1000 + index,
                        }
                        for index in range(start, min(start + chunk, count))
                    ]
                ).ids
                env.cr.commit()
        return ids

    # ------------------------------------------------------------ moves

    def move(self, env, variant, ids):
        leads = env["crm.lead"].browse(ids)
        leads.write({"stage_id": self.stage_b})
        if variant == "floor":
            # the same work done directly, in batch
            env["mail.activity"].create(self.floor_activities(env, leads))
            env["mail.template"].browse(self.template).send_mail_batch(leads.ids)

    def floor_activities(self, env, leads):
        """The values of the activities the floor creates, 3 per deal."""
        today = env.cr.now().date()
        model_id = env["ir.model"]._get_id("crm.lead")
        return [
            {
                "res_model_id": model_id,
                "res_id": lead.id,
                "activity_type_id": self.activity_type,
                "summary": summary,
                "date_deadline": today + timedelta(days=index + 1),
                "user_id": lead.user_id.id,
                "automated": True,
            }
            for lead in leads
            for index, summary in enumerate(self.summaries)
        ]

    def work_done(self, env, ids):
        """(activities, emails, log rows) created on the deals ``ids``."""
        activities = env["mail.activity"].search_count(
            [("res_model", "=", "crm.lead"), ("res_id", "in", ids)]
        )
        mails = env["mail.mail"].search_count(
            [("model", "=", "crm.lead"), ("res_id", "in", ids), ("recipient_ids", "!=", False)]
        )
        mails += env["mail.mail"].search_count(
            [
                ("model", "=", "crm.lead"),
                ("res_id", "in", ids),
                ("recipient_ids", "=", False),
                ("email_to", "!=", False),
            ]
        )
        logs = env["crm.deal.stage.log"].search_count(
            [("lead_id", "in", ids), ("stage_id", "=", self.stage_b)]
        )
        return activities, mails, logs

    def check_work_done(self, label, ids):
        """A note when the engine did not create 3 activities and 1 log row
        per deal of ``ids``."""
        with self.env() as env:
            act, _mails, logs = self.work_done(env, ids)
        size = len(ids)
        if act != 3 * size or logs != size:
            self.notes.append(
                f"{label} {size}: deal_stages created {act} activities and {logs} log "
                f"rows (expected {3 * size} and {size})"
            )
