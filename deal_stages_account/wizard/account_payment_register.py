from odoo import models


class AccountPaymentRegister(models.TransientModel):
    _inherit = "account.payment.register"

    def _create_payments(self):
        # one reconciliation per payment: the deals of all the paid invoices
        # move on together, once every payment is reconciled
        deferred = self.with_context(deal_auto_advance_deferred=True)
        payments = super(AccountPaymentRegister, deferred)._create_payments()
        self.line_ids.move_id._deal_auto_advance_documents()
        return payments.with_env(self.env)
