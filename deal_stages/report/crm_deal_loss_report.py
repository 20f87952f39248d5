from odoo import fields, models
from odoo.tools import SQL


class CrmDealLossReport(models.Model):
    """Lost deals by the step they were lost at, lost reason and salesperson.

    Built on the deal itself (lost = Odoo's won/lost status, the step it stood
    in, its lost reason), so it holds however the deal was marked lost. Its
    version is the one the deal followed when lost.
    """

    _name = "crm.deal.loss.report"
    _inherit = ["crm.deal.report.mixin", "crm.deal.report.version.mixin"]
    _description = "Deal Losses"
    _auto = False
    _order = "date_lost desc, id desc"
    _depends = {
        "crm.lead": [
            "won_status",
            "type",
            "deal_script_id",
            "deal_step_id",
            "stage_id",
            "lost_reason_id",
            "user_id",
            "team_id",
            "company_id",
            "date_closed",
            "expected_revenue",
        ],
        "crm.deal.script": ["process_id", "version"],
        "crm.deal.script.step": ["step_key"],
    }

    step_id = fields.Many2one("crm.deal.script.step", string="Lost at Step", readonly=True)
    stage_id = fields.Many2one("crm.stage", readonly=True)
    lost_reason_id = fields.Many2one("crm.lost.reason", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    date_lost = fields.Datetime(string="Lost On", readonly=True)
    lost_count = fields.Integer(string="Lost Deals", readonly=True, aggregator="sum")
    expected_revenue = fields.Monetary(
        string="Lost Value",
        readonly=True,
        aggregator="sum",
        help="Expected revenue of the lost deals.",
    )

    @property
    def _table_query(self):
        return SQL(
            """
            SELECT deal.id,
                   deal.id AS lead_id,
                   deal.deal_script_id AS script_id,
                   deal.deal_step_id AS step_id,
                   %s,
                   deal.stage_id,
                   deal.lost_reason_id,
                   deal.user_id AS salesperson_id,
                   deal.team_id,
                   deal.company_id,
                   %s,
                   COALESCE(deal.date_closed, deal.write_date) AS date_lost,
                   1 AS lost_count,
                   COALESCE(deal.expected_revenue, 0) AS expected_revenue
              FROM crm_lead deal
              JOIN crm_deal_script script ON script.id = deal.deal_script_id
              LEFT JOIN crm_deal_script_step step ON step.id = deal.deal_step_id
              LEFT JOIN res_company company ON company.id = deal.company_id
             WHERE deal.won_status = 'lost'
               AND deal.type = 'opportunity'
            """,
            self._version_dimensions_sql(SQL("script"), SQL("step")),
            self._company_currency_sql(),
        )
