from odoo import api, models


class SaleOrder(models.Model):
    _inherit = "sale.order"

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        orders._deal_advance_opportunities()
        return orders

    def write(self, vals):
        # sent, confirmed, cancelled, back to draft: every status change of
        # a quotation (sale's buttons, the email composer, the portal
        # signature, RPC) is a write of its state
        result = super().write(vals)
        if "state" in vals or "opportunity_id" in vals:
            self._deal_advance_opportunities()
        return result

    def _deal_advance_opportunities(self):
        """Let the deals of these orders move on if their step's condition holds.

        One call for all the orders' deals. The deal moves as the script's
        system action, whoever changed the order (e.g. the customer signing
        on the portal): sudo, the history still names the user who did it.
        """
        leads = self.opportunity_id
        if leads:
            leads.sudo()._deal_auto_advance_written()
