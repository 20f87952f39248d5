from odoo import models

from .crm_lead import DEAL_INVOICE_TYPES


class AccountMove(models.Model):
    _name = "account.move"
    _inherit = ["account.move", "crm.deal.document.mixin"]

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        # the invoice or credit note an order change of the amount waited for;
        # sudo: see _deal_auto_advance_documents
        leads = posted.sudo()._deal_document_leads().filtered("deal_invoice_pending")
        if leads:
            leads.deal_invoice_pending = False
        posted._deal_auto_advance_documents()
        return posted

    def button_cancel(self):
        result = super().button_cancel()
        # a cancelled credit note raises the invoiced amount again
        self._deal_auto_advance_documents()
        return result

    def _deal_document_leads(self):
        """The deals whose orders these customer invoices and credit notes bill."""
        invoices = self.filtered(lambda move: move.move_type in DEAL_INVOICE_TYPES)
        return invoices.invoice_line_ids.sale_line_ids.order_id.opportunity_id
