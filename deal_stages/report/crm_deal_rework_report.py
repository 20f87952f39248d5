from odoo import fields, models
from odoo.tools import SQL

# the report's labels name the change in volume terms
CHANGE_TYPES = [
    ("increase", "Volume increase"),
    ("decrease", "Volume decrease"),
    ("correction", "Correction"),
    ("other", "Other"),
]


class CrmDealReworkReport(models.Model):
    """Rework: the order changes applied to deals and the steps they sent deals back to.

    One row per ``crm.deal.order.change``. Its version is the one of the step
    the change sent the deal back to (the version the deal followed then),
    else the deal's.
    """

    _name = "crm.deal.rework.report"
    _inherit = ["crm.deal.report.mixin", "crm.deal.report.version.mixin"]
    _description = "Deal Rework"
    _auto = False
    _order = "date desc, id desc"

    name = fields.Char(string="Amendment", readonly=True)
    change_type = fields.Selection(CHANGE_TYPES, readonly=True)
    return_step_id = fields.Many2one(
        "crm.deal.script.step", string="Returned to Step", readonly=True
    )
    user_id = fields.Many2one("res.users", string="Changed By", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    date = fields.Datetime(readonly=True)
    change_count = fields.Integer(string="Changes", readonly=True, aggregator="sum")
    amount_delta = fields.Monetary(
        string="Amount Change",
        readonly=True,
        aggregator="sum",
        help="Sum of the amount changes (negative for decreases).",
    )

    @property
    def _table_query(self):
        self.env["crm.deal.order.change"].flush_model()
        return SQL(
            """
            SELECT change.id,
                   change.lead_id,
                   change.name,
                   change.change_type,
                   change.amount_delta,
                   change.return_step_id,
                   change.user_id,
                   change.date,
                   deal.deal_script_id AS script_id,
                   %s,
                   deal.user_id AS salesperson_id,
                   deal.team_id,
                   deal.company_id,
                   %s,
                   1 AS change_count
              FROM crm_deal_order_change change
              JOIN crm_lead deal ON deal.id = change.lead_id
              LEFT JOIN crm_deal_script_step step ON step.id = change.return_step_id
              LEFT JOIN crm_deal_script script
                     ON script.id = COALESCE(step.script_id, deal.deal_script_id)
              LEFT JOIN res_company company ON company.id = deal.company_id
            """,
            self._version_dimensions_sql(SQL("script"), SQL("step")),
            self._company_currency_sql(),
        )
