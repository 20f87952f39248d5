from odoo import fields, models


class MailActivity(models.Model):
    _inherit = "mail.activity"

    deal_script_activity_id = fields.Many2one(
        "crm.deal.script.activity",
        string="Script Activity",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
        help="The deal script template that created this activity.",
    )
    deal_step_id = fields.Many2one(
        "crm.deal.script.step",
        string="Script Step",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
