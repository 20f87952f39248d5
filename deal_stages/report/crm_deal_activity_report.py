from odoo import fields, models
from odoo.tools import SQL


class CrmDealActivityReport(models.Model):
    """Script activities still open now, and which of them are overdue.

    Odoo's own activity analysis shows done activities; discipline is about
    the open ones: what the script asked for and nobody did yet. Its version
    is the one of the step that asked for the activity, else the deal's.
    """

    _name = "crm.deal.activity.report"
    _inherit = ["crm.deal.report.mixin", "crm.deal.report.version.mixin"]
    _description = "Open Script Activities"
    _auto = False
    _rec_name = "summary"
    _order = "date_deadline, id"
    _depends = {
        "mail.activity": [
            "res_model",
            "res_id",
            "active",
            "activity_type_id",
            "summary",
            "user_id",
            "date_deadline",
            "deal_step_id",
            "deal_script_activity_id",
        ],
        "crm.lead": ["user_id", "team_id", "company_id", "active", "deal_script_id"],
        "crm.deal.script": ["process_id", "version"],
        "crm.deal.script.step": ["script_id", "step_key"],
    }

    summary = fields.Char(readonly=True)
    activity_type_id = fields.Many2one("mail.activity.type", readonly=True)
    script_activity_id = fields.Many2one("crm.deal.script.activity", readonly=True)
    step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    user_id = fields.Many2one("res.users", string="Assigned To", readonly=True)
    date_deadline = fields.Date(string="Due Date", readonly=True)
    is_overdue = fields.Boolean(string="Overdue", readonly=True)
    open_count = fields.Integer(string="Open Activities", readonly=True, aggregator="sum")
    overdue_count = fields.Integer(string="Overdue Activities", readonly=True, aggregator="sum")
    days_overdue = fields.Integer(
        readonly=True,
        aggregator="avg",
        help="Days past the due date (0 when not overdue).",
    )

    @property
    def _table_query(self):
        today = fields.Date.context_today(self)
        return SQL(
            """
            SELECT activity.id,
                   activity.res_id AS lead_id,
                   activity.summary,
                   activity.activity_type_id,
                   activity.deal_script_activity_id AS script_activity_id,
                   deal.deal_script_id AS script_id,
                   activity.deal_step_id AS step_id,
                   %(versions)s,
                   activity.user_id,
                   deal.user_id AS salesperson_id,
                   deal.team_id,
                   deal.company_id,
                   activity.date_deadline,
                   activity.date_deadline < %(today)s AS is_overdue,
                   1 AS open_count,
                   (activity.date_deadline < %(today)s)::int AS overdue_count,
                   GREATEST(%(today)s - activity.date_deadline, 0) AS days_overdue
              FROM mail_activity activity
              JOIN crm_lead deal ON deal.id = activity.res_id
              LEFT JOIN crm_deal_script_step step ON step.id = activity.deal_step_id
              LEFT JOIN crm_deal_script script
                     ON script.id = COALESCE(step.script_id, deal.deal_script_id)
             WHERE activity.res_model = 'crm.lead'
               AND activity.active
               AND deal.active
               AND (activity.deal_step_id IS NOT NULL
                    OR activity.deal_script_activity_id IS NOT NULL)
            """,
            today=today,
            versions=self._version_dimensions_sql(SQL("script"), SQL("step")),
        )
