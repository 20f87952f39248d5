"""``make bench`` rows ``kanban`` and ``sla``: the pipeline's kanban load
with and without deal_stages' views, and the SLA cron over 20,000 open deals
of which 100 are due."""

from bench_common import BenchBase
from odoo_harness import say

KANBAN_LIMIT = 80
SLA_OPEN, SLA_DUE = 20000, 100


class KanbanSlaBench(BenchBase):
    def kanban_spec(self, env, without_addon):
        """Kanban arch of crm's pipeline and the web client's specification."""
        from lxml import etree

        view = env.ref("crm.crm_case_kanban_view_leads")
        with env.cr.savepoint(flush=False) as savepoint:
            if without_addon:
                ours = (
                    env["ir.model.data"]
                    .sudo()
                    .search([("module", "=like", "deal_stages%"), ("model", "=", "ir.ui.view")])
                )
                env["ir.ui.view"].sudo().browse(ours.mapped("res_id")).filtered(
                    lambda v: v.model == "crm.lead"
                ).write({"active": False})
            env.registry.clear_cache("templates")
            result = env["crm.lead"].get_views([(view.id, "kanban")])
            savepoint.rollback()
        env.invalidate_all()
        env.registry.clear_cache("templates")
        arch = etree.fromstring(result["views"]["kanban"]["arch"])
        fields_ = result["models"]["crm.lead"]["fields"]
        spec = {}
        for node in arch.iter("field"):
            if any(parent.tag == "field" for parent in node.iterancestors()):
                continue
            name = node.get("name")
            field = fields_.get(name) or env["crm.lead"].fields_get([name])[name]
            if field["type"] == "many2one":
                spec[name] = {"fields": {"display_name": {}}}
            elif field["type"] in ("many2many", "one2many"):
                sub = {"display_name": {}}
                if node.get("widget") == "many2many_tags":
                    sub["color"] = {}
                spec[name] = {"fields": sub} if node.get("widget") else {}
            else:
                spec[name] = {}
        return spec

    def bench_kanban(self):
        result = {}
        with self.env(uid=self.mover) as env:
            for variant, without in (("vanilla", True), ("addon", False)):
                spec = self.kanban_spec(env, without)
                # deals with the same activities and emails: the floor's and ours
                team = self.team["floor" if without else "addon"]
                domain = [("type", "=", "opportunity"), ("team_id", "=", team)]

                def load(domain=domain, spec=spec):
                    env["crm.lead"].web_search_read(
                        domain, spec, limit=KANBAN_LIMIT, count_limit=10001
                    )

                load()
                result[variant] = self.measured(env, load)
        vanilla, addon = result["vanilla"], result["addon"]
        self.add(
            f"kanban load, {KANBAN_LIMIT} cards (web_search_read)",
            {"vanilla": str(vanilla), "addon": str(addon)},
            f"<= vanilla+3 q (+{addon.queries - vanilla.queries})",
            addon.queries <= vanilla.queries + 3,
        )

    def bench_sla(self):
        with self.env() as env:
            cron_id = env.ref("deal_stages.ir_cron_deal_sla").id
        say(f"SLA: {SLA_OPEN:,} open deals ...")
        count = SLA_OPEN // 10 if self.quick else SLA_OPEN
        self.sla_data(count)
        with self.env() as env:
            cron = env["ir.cron"].browse(cron_id)
            measure = self.measured(env, cron.method_direct_trigger)
        self.add_time(
            f"SLA cron, {count:,} open deals, {SLA_DUE} due",
            measure,
            2,
        )

    def sla_data(self, count):
        """``count`` open deals in a step with a 24-hour deadline, of which
        SLA_DUE entered it two days ago."""
        from odoo import Command

        with self.env() as env:
            env["crm.deal.script"].create(
                {
                    "name": "Bench SLA script",
                    "team_ids": [Command.link(self.team_sla)],
                    "step_ids": [
                        Command.create({"sequence": 1, "stage_id": self.stage_a, "sla_hours": 24}),
                        Command.create({"sequence": 2, "stage_id": self.stage_b}),
                    ],
                }
            )
        # 1,000 deals through the ORM (the SLA feature sets their deadlines on
        # entry), then SQL copies of them up to ``count``: same columns, each
        # with its open stay
        ids = self.make_deals(self.team_sla, min(1000, count))
        with self.env() as env:
            env.cr.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'crm_lead' AND column_name <> 'id'"
            )
            columns = ", ".join(f'"{row[0]}"' for row in env.cr.fetchall())
            copies = (count - len(ids) + len(ids) - 1) // len(ids)
            if copies:
                env.cr.execute(
                    f"INSERT INTO crm_lead ({columns}) SELECT {columns}"
                    " FROM crm_lead, generate_series(1, %s) WHERE id = ANY(%s)"
                    " ORDER BY id LIMIT %s RETURNING id",
                    [copies, ids, count - len(ids)],
                )
                new_ids = [row[0] for row in env.cr.fetchall()]
                env.cr.execute(
                    """
                    INSERT INTO crm_deal_stage_log (
                        lead_id, script_id, step_id, stage_id, user_id, salesperson_id,
                        team_id, lead_user_id, lead_team_id, company_id, date_in, cause,
                        entry_done, duration_hours, create_uid, create_date, write_uid,
                        write_date)
                    SELECT id, deal_script_id, deal_step_id, stage_id, user_id, user_id,
                           team_id, user_id, team_id, company_id, date_last_stage_update,
                           'move', true, 0,
                           1, now() at time zone 'utc', 1, now() at time zone 'utc'
                      FROM crm_lead WHERE id = ANY(%s)
                    """,
                    [new_ids],
                )
                ids += new_ids
        due = ids[:SLA_DUE]
        with self.env() as env:
            # the due deals entered their step two days ago; the others now
            env.cr.execute(
                "UPDATE crm_deal_stage_log"
                " SET date_in = now() at time zone 'utc' - interval '48 hours'"
                " WHERE lead_id = ANY(%s) AND date_out IS NULL",
                [due],
            )
            due_sql = (
                "UPDATE crm_lead SET date_last_stage_update = now() at time zone 'utc'"
                " - interval '48 hours', deal_sla_deadline = now() at time zone 'utc'"
                " - interval '24 hours',"
                " deal_sla_next_check = now() at time zone 'utc' - interval '1 hour'"
            )
            env.cr.execute(due_sql + " WHERE id = ANY(%s)", [due])
            env.cr.execute("ANALYZE crm_lead")
            env.cr.execute("ANALYZE crm_deal_stage_log")
