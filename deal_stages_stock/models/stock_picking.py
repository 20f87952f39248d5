from odoo import api, models
from odoo.exceptions import AccessError


class StockPicking(models.Model):
    _name = "stock.picking"
    _inherit = ["stock.picking", "crm.deal.document.mixin"]

    @api.model_create_multi
    def create(self, vals_list):
        self._deal_verify_state(vals_list)
        return super().create(vals_list)

    def write(self, vals):
        self._deal_verify_state([vals])
        return super().write(vals)

    def _deal_verify_state(self, vals_list):
        # the status follows the moves (computed): written by a user without
        # stock rights (sale_stock lets salespeople write transfers), a
        # transfer would look delivered to the deal with nothing shipped
        if (
            any("state" in vals for vals in vals_list)
            and not self.env.su
            and not self.env.user.has_group("stock.group_stock_user")
        ):
            raise AccessError(
                self.env._("A transfer is done when it is validated: its status cannot be written.")
            )

    def _action_done(self):
        result = super()._action_done()
        self._deal_auto_advance_documents()
        return result

    def action_cancel(self):
        result = super().action_cancel()
        # cancelling the backorder of a partial delivery ends the delivery
        self._deal_auto_advance_documents()
        return result

    def _deal_document_leads(self):
        # the deals delivered by these transfers (see the deal's auto-advance
        # condition on delivery)
        deliveries = self.filtered(lambda picking: picking.picking_type_code == "outgoing")
        return deliveries.sale_id.opportunity_id
