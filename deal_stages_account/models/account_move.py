from odoo import models

from .crm_lead import DEAL_INVOICE_TYPES


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        posted._deal_auto_advance_leads()
        return posted

    def button_cancel(self):
        result = super().button_cancel()
        # a cancelled credit note raises the invoiced amount again
        self._deal_auto_advance_leads()
        return result

    def _deal_auto_advance_leads(self):
        """Let the deals invoiced by these documents move on (see the deal's
        auto-advance conditions on invoicing and payment)."""
        if (
            self.env.context.get("deal_auto_advance_deferred")
            or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids()
        ):
            return
        # sudo: whoever posts or pays an invoice need not read its sales orders
        # or deals; the deals move as the script's system action, logged as
        # such (cause "auto", the user who triggered it)
        invoices = self.sudo().filtered(lambda move: move.move_type in DEAL_INVOICE_TYPES)
        leads = invoices.invoice_line_ids.sale_line_ids.order_id.opportunity_id
        if leads:
            leads._deal_auto_advance_written()
