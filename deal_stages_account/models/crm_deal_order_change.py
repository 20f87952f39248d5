from odoo import models

from .crm_lead import DEAL_REVENUE_CHANGE


class CrmDealOrderChange(models.Model):
    _inherit = "crm.deal.order.change"

    def _apply(self):
        if self.amount_delta:
            # the posted invoices were for the old amount: the deal is not
            # invoiced in full (and does not move on from Invoicing by itself)
            # until an invoice or credit note of the change is posted
            # an engine field (see crm.lead._deal_engine_fields): the system sets it
            self.lead_id.sudo().deal_invoice_pending = True
        # the recorded way to change an ordered deal's amount (see
        # crm.lead._deal_verify_revenue_lowering)
        return super(
            CrmDealOrderChange, self.with_context(deal_revenue_change=DEAL_REVENUE_CHANGE)
        )._apply()
