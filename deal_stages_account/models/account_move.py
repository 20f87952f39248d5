from odoo import models

from .crm_lead import DEAL_INVOICE_TYPES


class DealAutoAdvanceDeferred:
    """Marks the payments being registered together (a Python object: a
    context sent over RPC cannot carry one, so nobody switches the deals'
    auto-advance off by setting a key)."""

    __slots__ = ()


DEAL_AUTO_ADVANCE_DEFERRED = DealAutoAdvanceDeferred()


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        # the invoice or credit note an order change of the amount waited for;
        # sudo: see _deal_auto_advance_leads
        leads = posted.sudo()._deal_leads().filtered("deal_invoice_pending")
        if leads:
            leads.deal_invoice_pending = False
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
            self.env.context.get("deal_auto_advance_deferred") is DEAL_AUTO_ADVANCE_DEFERRED
            or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids()
        ):
            return
        # sudo: whoever posts or pays an invoice need not read its sales orders
        # or deals; the deals move as the script's system action, logged as
        # such (cause "auto", the user who triggered it)
        leads = self.sudo()._deal_leads()
        if leads:
            leads._deal_auto_advance_safely()

    def _deal_leads(self):
        """The deals whose orders these customer invoices and credit notes bill."""
        invoices = self.filtered(lambda move: move.move_type in DEAL_INVOICE_TYPES)
        return invoices.invoice_line_ids.sale_line_ids.order_id.opportunity_id
