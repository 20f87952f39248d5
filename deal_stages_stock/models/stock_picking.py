from odoo import models


class StockPicking(models.Model):
    _name = "stock.picking"
    _inherit = ["stock.picking", "crm.deal.document.mixin"]

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
