from odoo import models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    def reconcile(self):
        # a payment, a credit note or a bank line matched with an invoice
        result = super().reconcile()
        self.move_id._deal_auto_advance_documents()
        return result
