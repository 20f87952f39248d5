from odoo import api, fields, models
from odoo.tools import SQL

from .crm_deal_report_mixin import TIME_PERCENTILES

OPEN_STAYS_HELP = (
    " A stay the deal is still in counts up to the moment of the query (filter "
    "'Completed' to keep only deals that left the step)."
)


class CrmDealStepTimeReport(models.Model):
    """Time in step per deal: all stays of a deal in a step summed up.

    A deal that bounces back to a step adds every stay there, so a step that
    keeps deals long over several visits shows as the bottleneck it is.
    """

    _name = "crm.deal.step.time.report"
    _inherit = ["crm.deal.report.mixin", "crm.deal.report.version.mixin"]
    _description = "Time in Step (per deal)"
    _auto = False
    _order = "date_first_in desc, id desc"
    _depends = {
        "crm.deal.stage.log": ["lead_id", "script_id", "step_id", "date_in", "date_out", "cause"],
        "crm.deal.step.total": ["lead_user_id", "lead_team_id"],
        "crm.lead": [
            "user_id",
            "team_id",
            "company_id",
            "won_status",
            "active",
            "date_closed",
        ],
        "crm.deal.script": ["process_id", "version"],
        "crm.deal.script.step": ["step_key"],
    }
    _percentile_fields = TIME_PERCENTILES

    step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    date_first_in = fields.Datetime(string="First Entered", readonly=True)
    date_last_out = fields.Datetime(string="Last Left", readonly=True)
    is_open = fields.Boolean(
        string="In Step Now", readonly=True, help="The deal currently stands in this step."
    )
    stay_count = fields.Integer(
        string="Stays",
        readonly=True,
        aggregator="sum",
        help="Number of times the deals entered the step (re-entries included).",
    )
    reentry_count = fields.Integer(
        string="Re-entries",
        readonly=True,
        aggregator="sum",
        help="Number of times the deals came back to the step.",
    )
    hours = fields.Float(
        string="Total Time in Step (h)",
        readonly=True,
        aggregator="avg",
        help="Average, over deals, of the total time a deal spent in the step "
        "(all its stays summed), in hours." + OPEN_STAYS_HELP,
    )
    days = fields.Float(
        string="Total Time in Step (days)",
        readonly=True,
        aggregator="avg",
        help="Average, over deals, of the total time a deal spent in the step "
        "(all its stays summed), in days." + OPEN_STAYS_HELP,
    )
    median_hours = fields.Float(
        string="Median Total Time (h)",
        readonly=True,
        aggregator="avg",
        help="Median, over deals, of the total time spent in the step (stays "
        "summed), in hours. Computed exactly for every cell and total." + OPEN_STAYS_HELP,
    )
    p90_hours = fields.Float(
        string="90th Percentile Total Time (h)",
        readonly=True,
        aggregator="avg",
        help="90% of the deals spent less than this in the step in total (stays "
        "summed), in hours. Computed exactly for every cell and total." + OPEN_STAYS_HELP,
    )
    median_days = fields.Float(
        string="Median Total Time (days)",
        readonly=True,
        aggregator="avg",
        help="Median, over deals, of the total time spent in the step, in days." + OPEN_STAYS_HELP,
    )
    p90_days = fields.Float(
        string="90th Percentile Total Time (days)",
        readonly=True,
        aggregator="avg",
        help="90% of the deals spent less than this in the step in total, in days."
        + OPEN_STAYS_HELP,
    )

    team_leader_id = fields.Many2one(
        "res.users",
        compute="_compute_team_leader_id",
        search="_search_team_leader_id",
        help="The leader of the deal's sales team.",
    )

    @api.depends("team_id.user_id")
    def _compute_team_leader_id(self):
        for total in self:
            total.team_leader_id = total.team_id.user_id

    def _search_team_leader_id(self, operator, value):
        # the record rule of team leaders (see crm.team._deal_led_teams_domain)
        return self.env["crm.team"]._deal_led_teams_domain("team_id", operator, value)

    def _report_prepare(self):
        # the totals of the deals moved in this transaction, before reading them
        self.env["crm.deal.step.total"]._flush_pending()
        return super()._report_prepare()

    @property
    def _table_query(self):
        # the stays of a deal in a step are summed up by crm.deal.step.total
        # as they are written: the pivot reads one row per deal and step, in
        # step order from its index, and adds the running stay, if any, up to
        # now (or to the closing of the deal). Plain expressions (no LATERAL):
        # PostgreSQL flattens the view into the pivot's query and drops the
        # joins whose columns are not asked for (the script and step, for the
        # versions). The deal's salesperson and team are those copied on the
        # totals (crm.lead._deal_sync_owners): no join of the deals
        now = fields.Datetime.now()
        running_out = SQL(
            "CASE WHEN total.open_date_in IS NOT NULL"
            " THEN ((%s) ->> total.lead_id::text)::timestamp END",
            self._closed_stays_sql(),
        )
        seconds = SQL(
            """
            total.closed_seconds
            + CASE WHEN total.open_date_in IS NULL THEN 0::float8
                   ELSE GREATEST(EXTRACT(EPOCH FROM COALESCE(%(running_out)s, %(now)s)
                                                    - total.open_date_in), 0)::float8
              END
            """,
            running_out=running_out,
            now=now,
        )
        return SQL(
            """
            SELECT total.id,
                   total.lead_id,
                   total.script_id,
                   total.step_id,
                   script.process_id,
                   script.version,
                   step.step_key,
                   total.lead_user_id AS salesperson_id,
                   total.lead_team_id AS team_id,
                   total.company_id,
                   total.date_first_in,
                   CASE WHEN total.open_date_in IS NOT NULL AND %(running_out)s IS NULL
                        THEN NULL
                        ELSE GREATEST(total.date_last_out, %(running_out)s) END AS date_last_out,
                   total.open_date_in IS NOT NULL AND %(running_out)s IS NULL AS is_open,
                   total.stay_count,
                   total.stay_count - 1 AS reentry_count,
                   %(measures)s
              FROM crm_deal_step_total total
              LEFT JOIN crm_deal_script script ON script.id = total.script_id
              LEFT JOIN crm_deal_script_step step ON step.id = total.step_id
            """,
            running_out=running_out,
            measures=self._time_measures_sql(seconds),
        )
