from odoo import fields, models
from odoo.tools import SQL

from ..models.crm_deal_stage_log import CAUSES
from .crm_deal_report_mixin import TIME_PERCENTILES

OPEN_STAYS_HELP = (
    " A stay the deal is still in counts up to the moment of the query (filter "
    "'Completed stays' to leave those out)."
)


class CrmDealStepStayReport(models.Model):
    """Time in step, one row per stay of a deal in a script step."""

    _name = "crm.deal.step.stay.report"
    _inherit = [
        "crm.deal.report.mixin",
        "crm.deal.report.version.mixin",
        # lead_team_leader_id: the team leaders' record rules
        "crm.deal.team.leader.mixin",
    ]
    _description = "Time in Step (per stay)"
    _auto = False
    _order = "date_in desc, id desc"
    _depends = {
        "crm.deal.stage.log": [
            "lead_id",
            "script_id",
            "step_id",
            "stage_id",
            "salesperson_id",
            "team_id",
            "lead_user_id",
            "lead_team_id",
            "company_id",
            "date_in",
            "date_out",
            "cause",
            "sla_breached",
        ],
        "crm.lead": ["user_id", "team_id", "won_status", "active", "date_closed"],
        "crm.deal.script": ["process_id", "version"],
        "crm.deal.script.step": ["step_key"],
    }
    _percentile_fields = TIME_PERCENTILES

    step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    stage_id = fields.Many2one("crm.stage", readonly=True)
    salesperson_id = fields.Many2one(help="The deal's salesperson during the stay.")
    team_id = fields.Many2one(help=None)
    # the deal's owner now: who sees the stay (record rules)
    lead_user_id = fields.Many2one(
        "res.users", string="Current Salesperson", readonly=True, help="The deal's salesperson now."
    )
    lead_team_id = fields.Many2one(
        "crm.team", string="Current Sales Team", readonly=True, help="The deal's sales team now."
    )
    date_in = fields.Datetime(string="Entered", readonly=True)
    date_out = fields.Datetime(string="Left", readonly=True)
    cause = fields.Selection(CAUSES, string="Entered By", readonly=True)
    is_open = fields.Boolean(string="Current Stay", readonly=True)
    sla_breached = fields.Boolean(string="Deadline Breached", readonly=True)
    breach_count = fields.Integer(
        string="Deadline Breaches",
        readonly=True,
        aggregator="sum",
        help="Stays in which the step's deadline (SLA) was breached.",
    )
    hours = fields.Float(
        string="Time in Step (h)",
        readonly=True,
        aggregator="avg",
        help="Average time of a stay in the step, in hours." + OPEN_STAYS_HELP,
    )
    days = fields.Float(
        string="Time in Step (days)",
        readonly=True,
        aggregator="avg",
        help="Average time of a stay in the step, in days (24 h)." + OPEN_STAYS_HELP,
    )
    median_hours = fields.Float(
        string="Median Time (h)",
        readonly=True,
        aggregator="avg",
        help="Median time of the stays of each group, in hours: half of the stays "
        "were shorter. Computed exactly for every cell and total." + OPEN_STAYS_HELP,
    )
    p90_hours = fields.Float(
        string="90th Percentile Time (h)",
        readonly=True,
        aggregator="avg",
        help="90% of the stays of each group were shorter than this, in hours. "
        "Computed exactly for every cell and total." + OPEN_STAYS_HELP,
    )
    median_days = fields.Float(
        string="Median Time (days)",
        readonly=True,
        aggregator="avg",
        help="Median time of the stays of each group, in days." + OPEN_STAYS_HELP,
    )
    p90_days = fields.Float(
        string="90th Percentile Time (days)",
        readonly=True,
        aggregator="avg",
        help="90% of the stays of each group were shorter than this, in days." + OPEN_STAYS_HELP,
    )

    @property
    def _table_query(self):
        # plain expressions over the history alone (no LATERAL): PostgreSQL
        # flattens the view into the pivot's query, keeps only the columns
        # the pivot asks for and reads them from the log's step index alone
        # (no visit of the table), already in step and salesperson order; a
        # stay already left has its stored duration, a stay still open counts
        # up to now, or to the closing of its deal
        now = fields.Datetime.now()
        ended = SQL(
            "CASE WHEN log.date_out IS NULL THEN ((%s) ->> log.lead_id::text)::timestamp END",
            self._closed_stays_sql(),
        )
        seconds = SQL(
            """
            CASE WHEN log.date_out IS NOT NULL
                 THEN COALESCE(log.duration_hours, 0)::float8 * 3600
                 ELSE GREATEST(EXTRACT(EPOCH FROM COALESCE(%(ended)s, %(now)s) - log.date_in),
                               0)::float8
            END
            """,
            ended=ended,
            now=now,
        )
        return SQL(
            """
            SELECT log.id,
                   log.lead_id,
                   log.script_id,
                   log.step_id,
                   script.process_id,
                   script.version,
                   step.step_key,
                   log.stage_id,
                   log.salesperson_id,
                   log.team_id,
                   log.lead_user_id,
                   log.lead_team_id,
                   log.company_id,
                   log.date_in,
                   log.cause,
                   COALESCE(log.sla_breached, FALSE) AS sla_breached,
                   CASE WHEN log.sla_breached THEN 1 ELSE 0 END AS breach_count,
                   COALESCE(log.date_out, %(ended)s) AS date_out,
                   COALESCE(log.date_out, %(ended)s) IS NULL AS is_open,
                   %(measures)s
              FROM crm_deal_stage_log log
              LEFT JOIN crm_deal_script script ON script.id = log.script_id
              LEFT JOIN crm_deal_script_step step ON step.id = log.step_id
             WHERE log.step_id IS NOT NULL AND log.cause != 'lost'
            """,
            ended=ended,
            measures=self._time_measures_sql(seconds),
        )
