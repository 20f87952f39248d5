from odoo import fields, models
from odoo.tools import SQL

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
    _inherit = ["crm.deal.report.percentile.mixin"]
    _description = "Time in Step (per deal)"
    _auto = False
    _rec_name = "lead_id"
    _order = "date_first_in desc, id desc"
    _depends = {
        "crm.deal.stage.log": ["lead_id", "script_id", "step_id", "date_in", "date_out"],
        "crm.lead": [
            "user_id",
            "team_id",
            "company_id",
            "won_status",
            "active",
            "date_closed",
        ],
    }
    _percentile_fields = {
        "median_hours": ("hours", 0.5),
        "p90_hours": ("hours", 0.9),
        "median_days": ("days", 0.5),
        "p90_days": ("days", 0.9),
    }

    lead_id = fields.Many2one("crm.lead", string="Deal", readonly=True)
    script_id = fields.Many2one("crm.deal.script", readonly=True)
    step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    salesperson_id = fields.Many2one("res.users", readonly=True, help="The deal's salesperson.")
    team_id = fields.Many2one(
        "crm.team", string="Sales Team", readonly=True, help="The deal's sales team."
    )
    company_id = fields.Many2one("res.company", readonly=True)
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

    @property
    def _table_query(self):
        return SQL(
            """
            SELECT per_deal.id,
                   per_deal.lead_id,
                   per_deal.script_id,
                   per_deal.step_id,
                   deal.user_id AS salesperson_id,
                   deal.team_id,
                   deal.company_id,
                   per_deal.date_first_in,
                   per_deal.date_last_out,
                   per_deal.is_open,
                   per_deal.stay_count,
                   per_deal.stay_count - 1 AS reentry_count,
                   per_deal.seconds / 3600 AS hours,
                   per_deal.seconds / 3600 AS median_hours,
                   per_deal.seconds / 3600 AS p90_hours,
                   per_deal.seconds / 86400 AS days,
                   per_deal.seconds / 86400 AS median_days,
                   per_deal.seconds / 86400 AS p90_days
              FROM (
                    SELECT MIN(log.id) AS id,
                           log.lead_id,
                           log.step_id,
                           MIN(log.script_id) AS script_id,
                           MIN(log.date_in) AS date_first_in,
                           CASE WHEN BOOL_OR(stay.date_out IS NULL) THEN NULL
                                ELSE MAX(stay.date_out) END AS date_last_out,
                           BOOL_OR(stay.date_out IS NULL) AS is_open,
                           COUNT(*) AS stay_count,
                           SUM(stay.seconds) AS seconds
                      FROM crm_deal_stage_log log
                      JOIN crm_lead deal ON deal.id = log.lead_id
                     CROSS JOIN LATERAL (%s) stay
                     WHERE log.step_id IS NOT NULL AND log.cause != 'lost'
                     GROUP BY log.lead_id, log.step_id
                   ) per_deal
              JOIN crm_lead deal ON deal.id = per_deal.lead_id
            """,
            self._stay_sql(),
        )
