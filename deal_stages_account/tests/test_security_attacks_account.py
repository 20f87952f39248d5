from odoo import Command
from odoo.exceptions import AccessError, UserError
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

    def test_lowered_revenue_does_not_meet_the_prepayment(self):
        # M3: an order of 10 machines, the first one invoiced and paid (10 %)
        deal = self._create_b2b_deal(self.step_prepayment, revenue=10000.0)
        order = self._confirmed_order(deal, quantity=10)
        invoice = order.sudo()._create_invoices()
        invoice.invoice_line_ids.quantity = 1
        invoice.with_user(self.accountant).action_post()
        self._register_payment(invoice, 1000.0)
        self.assertEqual(deal.deal_step_id, self.step_prepayment)
        self.assertEqual(deal.deal_paid_ratio, 10.0)
        # the salesperson lowers the amount so that 1,000 looks like 33 %
        with self.assertRaisesRegex(UserError, "Record an order change"):
            deal.with_user(self.user_sales_salesman).write({"expected_revenue": 3000.0})
        # nor as text, as an RPC client may send it
        with self.assertRaisesRegex(UserError, "Record an order change"):
            deal.with_user(self.user_sales_salesman).write({"expected_revenue": "3000"})
        with self.assertRaises(ValueError):
            deal.with_user(self.user_sales_salesman).write({"expected_revenue": "abc"})
        self.assertEqual(deal.expected_revenue, 10000.0)
        self.assertEqual(deal.deal_paid_ratio, 10.0)
        self.assertEqual(deal.deal_step_id, self.step_prepayment)
        self.assertFalse(self._auto_stays(deal))
        # raising it, or any amount before the order, stays free
        deal.with_user(self.user_sales_salesman).write({"expected_revenue": 12000.0})
        self.assertEqual(deal.expected_revenue, 12000.0)

    def test_lowered_revenue_before_invoicing_refused(self):
        deal = self._create_b2b_deal(self.step_invoicing, revenue=10000.0)
        self._confirmed_order(deal, quantity=10)
        with self.assertRaisesRegex(UserError, "Record an order change"):
            deal.with_user(self.user_sales_salesman).expected_revenue = 3000.0
        # the recorded way: an order change of the amount
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -7000.0}
        )
        self.assertEqual(deal.expected_revenue, 3000.0)
        self.assertTrue(deal.deal_invoice_pending)

    def test_revenue_lowered_below_two_orders_is_not_paid_in_full(self):
        # two quotations of one machine each, for a deal of 2,000
        deal = self._create_b2b_deal(self.step_invoicing, revenue=2000.0)
        orders = (
            self.env["sale.order"]
            .with_user(self.user_sales_salesman)
            .create(
                [
                    {
                        "partner_id": self.customer.id,
                        "opportunity_id": deal.id,
                        "order_line": [Command.create({"product_id": self.product.id})],
                    }
                    for _index in range(2)
                ]
            )
        )
        # before any order is confirmed the amount is free: the salesperson
        # lowers it to one machine, then confirms both quotations (Odoo raises
        # the expected revenue to an order's amount, not to their sum)
        deal.with_user(self.user_sales_salesman).write({"expected_revenue": 1000.0})
        orders.action_confirm()
        self.assertEqual(deal.expected_revenue, 1000.0)
        # the first order is invoiced and paid: half of what was ordered
        invoice = self._post_invoice(orders[0])
        self.assertRecordValues(
            deal, [{"deal_invoiced_amount": 1000.0, "deal_invoiced_in_full": False}]
        )
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self._register_payment(invoice, 1000.0)
        self.assertRecordValues(deal, [{"deal_paid_ratio": 50.0, "deal_paid_in_full": False}])
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self.assertFalse(self._auto_stays(deal))
        # the second order invoiced: the deal is invoiced in full, half paid
        self._post_invoice(orders[1])
        self.assertRecordValues(deal, [{"deal_invoiced_in_full": True, "deal_paid_ratio": 50.0}])

    def test_decrease_without_credit_note_is_not_paid_in_full(self):
        # an order of 10 machines; the salesperson records a decrease of
        # 9,000 but the order stays at 10 machines and no credit note comes
        deal = self._create_b2b_deal(self.step_invoicing, revenue=10000.0)
        order = self._confirmed_order(deal, quantity=10)
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -9000.0}
        )
        self.assertEqual(deal.expected_revenue, 1000.0)
        # one machine is invoiced (the posting clears the pending flag) and paid
        invoice = order.sudo()._create_invoices()
        invoice.invoice_line_ids.quantity = 1
        invoice.with_user(self.accountant).action_post()
        self.assertFalse(deal.deal_invoice_pending)
        self.assertFalse(deal.deal_invoiced_in_full, "9 machines ordered are not invoiced")
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self._register_payment(invoice, 1000.0)
        self.assertRecordValues(deal, [{"deal_paid_ratio": 10.0, "deal_paid_in_full": False}])
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        # the order is amended to the one machine taken: invoiced and paid in full
        order.order_line.with_user(self.user_sales_salesman).product_uom_qty = 1
        self.assertRecordValues(
            deal,
            [{"deal_paid_ratio": 100.0, "deal_invoiced_in_full": True, "deal_paid_in_full": True}],
        )

    def test_paid_order_cannot_move_to_another_deal(self):
        """A paid order proves its own deal: moved to another deal of the same
        salesperson, it would meet that deal's prepayment with no payment."""
        done = self._create_b2b_deal(self.step_prepayment)
        order = self._confirmed_order(done)
        self._register_payment(self._post_invoice(order), 1000.0)
        self.assertEqual(done.deal_paid_ratio, 100.0)
        target = self._create_b2b_deal(self.step_prepayment)
        order = order.with_user(self.user_sales_salesman)
        for value in (target.id, False):
            with self.subTest(opportunity=value), self.assertRaises(UserError):
                order.write({"opportunity_id": value})
        with self.assertRaises(UserError):
            target.write({"order_ids": [Command.link(order.id)]})
        self.assertEqual(order.opportunity_id, done)
        self.assertEqual(target.deal_paid_ratio, 0.0)
        self.assertEqual(target.deal_step_id, self.step_prepayment)
        # a quotation not confirmed yet still goes to the right deal
        quotation = (
            self.env["sale.order"]
            .with_user(self.user_sales_salesman)
            .create({"partner_id": self.customer.id, "opportunity_id": done.id})
        )
        quotation.write({"opportunity_id": target.id})
        self.assertEqual(quotation.opportunity_id, target)
