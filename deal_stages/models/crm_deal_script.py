from odoo import fields, models


class CrmDealScript(models.Model):
    """A deal script: the ordered process a deal follows through the pipeline."""

    _name = "crm.deal.script"
    _description = "Deal Script"
    _inherit = ["mail.thread"]
    _order = "sequence, name, id"

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company",
        string="Company",
        default=lambda self: self.env.company,
        index=True,
        tracking=True,
    )
    team_ids = fields.Many2many(
        "crm.team",
        "crm_deal_script_crm_team_rel",
        "script_id",
        "team_id",
        string="Sales Teams",
        help="Sales teams whose deals follow this script. Leave empty to offer it "
        "to every team.",
    )
    note = fields.Html(string="Description")
