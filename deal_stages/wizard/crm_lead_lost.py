from odoo import api, fields, models


class CrmLeadLost(models.TransientModel):
    _inherit = "crm.lead.lost"

    deal_lost_reason_required = fields.Boolean(
        compute="_compute_deal_lost_reason_required",
        help="Technical: a deal is at a step that requires a lost reason.",
    )

    @api.depends("lead_ids")
    def _compute_deal_lost_reason_required(self):
        for wizard in self:
            wizard.deal_lost_reason_required = any(
                wizard.lead_ids.deal_step_id.mapped("lost_reason_required")
            )
