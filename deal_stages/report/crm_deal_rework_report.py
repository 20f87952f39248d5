from odoo import fields, models
from odoo.tools import SQL

CHANGE_TYPES = [
    ("increase", "Volume increase"),
    ("decrease", "Volume decrease"),
    ("correction", "Correction"),
    ("other", "Other"),
]


class CrmDealReworkReport(models.Model):
    """Rework: the order changes applied to deals and the steps they sent deals back to.

    Reads ``crm.deal.order.change`` (the order change feature). While that
    model is not installed the report is simply empty: the query checks the
    registry each time, so nothing here changes when the feature lands.
    """

    _name = "crm.deal.rework.report"
    _description = "Deal Rework"
    _auto = False
    _rec_name = "lead_id"
    _order = "date desc, id desc"

    lead_id = fields.Many2one("crm.lead", string="Deal", readonly=True)
    name = fields.Char(string="Amendment", readonly=True)
    script_id = fields.Many2one("crm.deal.script", readonly=True)
    change_type = fields.Selection(CHANGE_TYPES, readonly=True)
    return_step_id = fields.Many2one(
        "crm.deal.script.step", string="Returned to Step", readonly=True
    )
    user_id = fields.Many2one("res.users", string="Changed By", readonly=True)
    salesperson_id = fields.Many2one("res.users", readonly=True)
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
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
        columns = SQL(
            """
            deal.deal_script_id AS script_id,
            deal.user_id AS salesperson_id,
            deal.team_id,
            deal.company_id,
            COALESCE(company.currency_id, %s) AS currency_id,
            1 AS change_count
            """,
            self.env.company.currency_id.id,
        )
        if "crm.deal.order.change" not in self.env:
            # the order change feature is not installed: same columns, no rows
            return SQL(
                """
                SELECT deal.id, deal.id AS lead_id, NULL::varchar AS name,
                       NULL::varchar AS change_type, NULL::numeric AS amount_delta,
                       NULL::int AS return_step_id, NULL::int AS user_id,
                       NULL::timestamp AS date, %s
                  FROM crm_lead deal
                  LEFT JOIN res_company company ON company.id = deal.company_id
                 WHERE FALSE
                """,
                columns,
            )
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
                   %s
              FROM crm_deal_order_change change
              JOIN crm_lead deal ON deal.id = change.lead_id
              LEFT JOIN res_company company ON company.id = deal.company_id
            """,
            columns,
        )
