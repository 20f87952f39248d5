from odoo import api, models


class SaleOrder(models.Model):
    _name = "sale.order"
    _inherit = ["sale.order", "crm.deal.document.mixin"]

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        orders._deal_auto_advance_documents()
        return orders

    def write(self, vals):
        # sent, confirmed, cancelled, back to draft: every status change of
        # a quotation (sale's buttons, the email composer, the portal
        # signature, RPC) is a write of its state
        result = super().write(vals)
        if "state" in vals or "opportunity_id" in vals:
            self._deal_auto_advance_documents()
        return result

    def _deal_document_leads(self):
        return self.opportunity_id
