from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import DealInvoicingCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_account", "deal_stages_security")
class TestAttackAccount(DealInvoicingCommon):
    """H3 / L2: invoicing and payment proofs come from the documents only."""

    PROOFS = {
        "deal_invoiced_amount": 1000.0,
        "deal_paid_amount": 1000.0,
        "deal_paid_ratio": 100.0,
        "deal_invoice_posted": True,
        "deal_invoiced_in_full": True,
        "deal_invoice_pending": False,
        "deal_paid_in_full": True,
    }

    def test_proofs_not_writable(self):
        deal = self._create_b2b_deal(self.step_prepayment)
        for user in (self.user_sales_salesman, self.user_sales_manager):
            for name, value in self.PROOFS.items():
                with self.subTest(user=user.login, field=name), self.assertRaises(AccessError):
                    deal.with_user(user).write({name: value})
        self.assertEqual(deal.deal_step_id, self.step_prepayment)
        self.assertFalse(self._auto_stays(deal))

    def test_forged_deferred_flag_does_not_stop_the_deal(self):
        deal = self._create_b2b_deal(self.step_invoicing)
        order = self._confirmed_order(deal)
        invoice = order.sudo()._create_invoices()
        invoice.with_user(self.accountant).with_context(
            deal_auto_advance_deferred=True
        ).action_post()
        self.assertEqual(deal.deal_step_id, self.step_prepayment)
