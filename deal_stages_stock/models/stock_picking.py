from odoo import models


class StockPicking(models.Model):
    _inherit = "stock.picking"

    def _action_done(self):
        result = super()._action_done()
        self._deal_auto_advance_leads()
        return result

    def action_cancel(self):
        result = super().action_cancel()
        # cancelling the backorder of a partial delivery ends the delivery
        self._deal_auto_advance_leads()
        return result

    def _deal_auto_advance_leads(self):
        """Let the deals delivered by these transfers move on (see the deal's
        auto-advance condition on delivery)."""
        if not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids():
            return
        # sudo: the warehouse user who validates a delivery need not read sales
        # orders or deals; the deals move as the script's system action,
        # logged as such (cause "auto", the user who triggered it)
        deliveries = self.sudo().filtered(lambda picking: picking.picking_type_code == "outgoing")
        leads = deliveries.sale_id.opportunity_id
        if leads:
            leads._deal_auto_advance_safely()
