from odoo import api, fields, models

from ..models.crm_deal_order_change import CHANGE_TYPES
from ..tools import ensure_one


class CrmDealOrderChangeWizard(models.TransientModel):
    """Record an order change of a deal: confirming creates (applies) it."""

    _name = "crm.deal.order.change.wizard"
    _description = "Record an Order Change"

    lead_id = fields.Many2one("crm.lead", string="Deal", required=True, ondelete="cascade")
    current_step_id = fields.Many2one(related="lead_id.deal_step_id", string="Current Step")
    change_type = fields.Selection(CHANGE_TYPES, required=True, default="increase")
    currency_id = fields.Many2one(related="lead_id.company_currency")
    expected_revenue = fields.Monetary(
        related="lead_id.expected_revenue", string="Expected Revenue", currency_field="currency_id"
    )
    amount_delta = fields.Monetary(
        string="Amount Change",
        currency_field="currency_id",
        help="Added to the deal's expected revenue (negative to reduce it).",
    )
    description = fields.Text(required=True)
    allowed_return_step_ids = fields.Many2many(
        "crm.deal.script.step", compute="_compute_allowed_return_step_ids"
    )
    return_step_id = fields.Many2one(
        "crm.deal.script.step",
        compute="_compute_return_step_id",
        store=True,
        readonly=False,
        required=True,
        domain="[('id', 'in', allowed_return_step_ids)]",
        help="The step the deal goes back to: its current step or an earlier one. The "
        "default depends on the change type (see the script's order change settings).",
    )

    @api.depends("lead_id")
    def _compute_allowed_return_step_ids(self):
        for wizard in self:
            wizard.allowed_return_step_ids = (
                wizard.lead_id._deal_return_steps() if wizard.lead_id else False
            )

    @api.depends("lead_id", "change_type")
    def _compute_return_step_id(self):
        for wizard in self:
            wizard.return_step_id = (
                wizard.lead_id._deal_default_return_step(wizard.change_type)
                if wizard.lead_id
                else False
            )

    def action_confirm(self):
        ensure_one(self)
        self.env["crm.deal.order.change"].create(
            {
                "lead_id": self.lead_id.id,
                "change_type": self.change_type,
                "amount_delta": self.amount_delta,
                "description": self.description,
                "return_step_id": self.return_step_id.id,
            }
        )
        return {"type": "ir.actions.act_window_close"}
