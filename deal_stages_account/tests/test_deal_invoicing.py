from odoo.exceptions import UserError
from odoo.tests import tagged

from ..hooks import post_init_hook, uninstall_hook
from .common import DealInvoicingCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealInvoicing(DealInvoicingCommon):
    """Invoices and payments move the B2B deal on, one step per event."""

    def test_invoice_posted_moves_to_prepayment(self):
        deal = self._create_b2b_deal(self.step_invoicing)
        order = self._confirmed_order(deal)
        invoice = order.sudo()._create_invoices()
        self.assertEqual(deal.deal_step_id, self.step_invoicing, "a draft invoice is not issued")
        self.assertFalse(deal.deal_invoice_posted)

        invoice.with_user(self.accountant).action_post()
        self.assertEqual(deal.deal_step_id, self.step_prepayment, "one step, no further")
        self.assertRecordValues(
            deal,
            [
                {
                    "deal_invoiced_amount": 1000.0,
                    "deal_paid_amount": 0.0,
                    "deal_paid_ratio": 0.0,
                    "deal_invoice_posted": True,
                    "deal_invoiced_in_full": True,
                    "deal_paid_in_full": False,
                }
            ],
        )
        stay = self._auto_stays(deal)
        self.assertEqual(len(stay), 1)
        self.assertEqual(stay.from_step_id, self.step_invoicing)
        self.assertEqual(stay.note, "Condition met: Invoice posted for the deal's amount")
        # the accountant, who has no right on deals, moved it by posting
        self.assertEqual(stay.user_id, self.accountant)

    def test_partial_payment_below_prepayment_stays(self):
        deal = self._create_b2b_deal(self.step_invoicing)
        invoice = self._post_invoice(self._confirmed_order(deal))
        self.assertEqual(deal.deal_step_id, self.step_prepayment)

        self._register_payment(invoice, 200.0)
        self.assertEqual(deal.deal_paid_ratio, 20.0)
        self.assertEqual(deal.deal_step_id, self.step_prepayment, "20 % is below the 30 % asked")
        self.assertEqual(len(self._auto_stays(deal)), 1)

        # the salesperson cannot move it on by hand before the prepayment either
        with self.assertRaisesRegex(UserError, "Prepayment of 30 % received"):
            deal.with_user(self.user_sales_salesman).stage_id = self.step_production.stage_id
        self.assertEqual(deal.deal_step_id, self.step_prepayment)

        self._register_payment(invoice, 150.0)
        self.assertEqual(deal.deal_paid_ratio, 35.0)
        self.assertEqual(deal.deal_step_id, self.step_production, "one step, no further")
        stay = self._auto_stays(deal)[-1]
        self.assertEqual(stay.from_step_id, self.step_prepayment)
        self.assertEqual(stay.note, "Condition met: Prepayment of 30 % received")
        self.assertEqual(stay.user_id, self.accountant)

    def test_amounts_untaxed_paid_share_and_credit_notes(self):
        # a deal of the test script (no conditions): the figures alone
        deal = self._create_deals(partner_id=self.customer.id, expected_revenue=1000.0)
        invoice = self._post_invoice(self._confirmed_order(deal, taxes=self.tax_15))
        self.assertEqual(invoice.amount_total, 1150.0)
        self._register_payment(invoice, 575.0)
        self.assertRecordValues(
            deal,
            [
                {
                    # untaxed, like the expected revenue: half paid is 500
                    "deal_invoiced_amount": 1000.0,
                    "deal_paid_amount": 500.0,
                    "deal_paid_ratio": 50.0,
                    "deal_invoiced_in_full": True,
                    "deal_paid_in_full": False,
                }
            ],
        )
        # a credit note of 200 (not refunded yet) lowers the invoiced amount
        refund = invoice.sudo()._reverse_moves()
        refund.invoice_line_ids.price_unit = 200.0
        refund.with_user(self.accountant).action_post()
        self.assertRecordValues(
            deal,
            [
                {
                    "deal_invoiced_amount": 800.0,
                    "deal_paid_amount": 500.0,
                    "deal_paid_ratio": 50.0,
                    "deal_invoiced_in_full": False,
                }
            ],
        )
        # the customer agreed on 800: the posted documents cover it
        deal.expected_revenue = 800.0
        self.assertRecordValues(deal, [{"deal_paid_ratio": 62.5, "deal_invoiced_in_full": True}])

    def test_increase_needs_an_invoice_of_the_new_amount(self):
        deal = self._create_b2b_deal(self.step_invoicing)
        order = self._confirmed_order(deal)
        invoice = self._post_invoice(order)
        self._register_payment(invoice, 400.0)
        self.assertEqual(deal.deal_step_id, self.step_production)

        # the customer orders more: the deal goes back to Invoicing
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": deal.id, "change_type": "increase", "amount_delta": 500.0}
        )
        self.assertEqual(deal.expected_revenue, 1500.0)
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self.assertFalse(deal.deal_invoiced_in_full, "the invoice of 1,000 no longer covers it")
        self.assertTrue(deal.deal_invoice_pending)
        # saving the deal does not push it on again: the first invoice exists
        deal.with_user(self.user_sales_salesman).description = "Two more machines, half price"
        self.assertEqual(deal.deal_step_id, self.step_invoicing)

        # the order is amended and invoiced in two parts: the first is not enough
        order.sudo().order_line = [
            (0, 0, {"product_id": self.product.id, "product_uom_qty": 2, "price_unit": 250.0})
        ]
        first = order.sudo()._create_invoices()
        first.invoice_line_ids.quantity = 1
        first.with_user(self.accountant).action_post()
        self.assertEqual(deal.deal_invoiced_amount, 1250.0)
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        auto_before = len(self._auto_stays(deal))

        self._post_invoice(order)
        self.assertTrue(deal.deal_invoiced_in_full)
        self.assertEqual(deal.deal_step_id, self.step_prepayment, "one step: 400 of 1,500 paid")
        self.assertEqual(deal.deal_paid_ratio, 26.67)
        stays = self._auto_stays(deal)
        self.assertEqual(len(stays), auto_before + 1)
        self.assertEqual(stays[-1].from_step_id, self.step_invoicing)

    def test_paid_in_full_waits_for_the_closing_documents(self):
        deal = self._create_b2b_deal(self.step_closing)
        invoice = self._post_invoice(self._confirmed_order(deal))
        self._register_payment(invoice, 1000.0)
        self.assertTrue(deal.deal_paid_in_full)
        self.assertEqual(deal.deal_step_id, self.step_closing, "documents not signed yet")
        self.assertFalse(self._auto_stays(deal))
        # the salesperson ticks the last item: the deal goes to Completion
        deal.deal_check_ids.filtered(
            lambda check: check.name == "Closing documents signed"
        ).with_user(self.user_sales_salesman).done = True
        self.assertEqual(deal.deal_step_id, self.step_completion)
        self.assertEqual(self._auto_stays(deal).note, "Condition met: Paid in full")

    def test_one_posting_moves_every_deal_invoiced(self):
        deals = self._create_b2b_deal(self.step_invoicing) | self._create_b2b_deal(
            self.step_invoicing, revenue=3000.0
        )
        orders = self._confirmed_order(deals[0]) | self._confirmed_order(deals[1], quantity=2)
        invoices = orders.sudo()._create_invoices(grouped=True)
        self.assertEqual(len(invoices), 2)
        invoices.with_user(self.accountant).action_post()
        self.assertEqual(deals[0].deal_step_id, self.step_prepayment)
        self.assertEqual(deals[1].deal_step_id, self.step_invoicing, "2,000 of 3,000 invoiced")
        # one payment for both invoices: the first deal's prepayment is there
        self._register_payment(invoices, 1000.0)
        self.assertEqual(deals[0].deal_step_id, self.step_production)

    def test_decrease_needs_a_credit_note(self):
        deal = self._create_b2b_deal(self.step_invoicing)
        invoice = self._post_invoice(self._confirmed_order(deal))
        self._register_payment(invoice, 400.0)
        self.assertEqual(deal.deal_step_id, self.step_production)

        # the customer takes less: back to Invoicing, where the invoice of
        # 1,000 is too much, so the deal does not move on by itself
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -200.0}
        )
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self.assertTrue(deal.deal_invoice_pending)
        self.assertFalse(deal.deal_invoiced_in_full)

        refund = invoice.sudo()._reverse_moves()
        refund.invoice_line_ids.price_unit = 200.0
        refund.with_user(self.accountant).action_post()
        self.assertFalse(deal.deal_invoice_pending)
        self.assertEqual(deal.deal_invoiced_amount, 800.0)
        # invoiced, and the 400 paid is half of the new amount: the deal goes
        # on through Prepayment to where it was
        self.assertEqual(deal.deal_step_id, self.step_production)
        stays = self._auto_stays(deal)[-2:]
        self.assertEqual(stays.mapped("from_step_id"), self.step_invoicing | self.step_prepayment)


@tagged("post_install", "-at_install", "deal_stages")
class TestDealInvoicingInstall(DealInvoicingCommon):
    """Scripts created from the template before the add-on get its conditions."""

    def test_install_and_uninstall_hooks(self):
        prepayment_item = self.step_prepayment.check_ids
        self.assertEqual(prepayment_item.name, "Prepayment received")
        self.assertFalse(prepayment_item.required, "the payments prove it")
        # as the script was before the add-on: no condition, the item required
        self.step_prepayment.auto_advance_domain = False
        prepayment_item.required = True
        post_init_hook(self.env)
        self.assertEqual(
            self.step_prepayment.auto_advance_domain, '[("deal_paid_ratio", ">=", 30)]'
        )
        self.assertEqual(self.step_prepayment.auto_advance_label, "Prepayment of 30 % received")
        self.assertFalse(prepayment_item.required)
        # a condition of the administrator's own is kept
        self.step_closing.auto_advance_domain = "[('deal_paid_ratio', '>=', 90)]"
        post_init_hook(self.env)
        self.assertEqual(self.step_closing.auto_advance_domain, "[('deal_paid_ratio', '>=', 90)]")

        uninstall_hook(self.env)
        self.assertFalse(
            (
                self.b2b.step_ids | self.env.ref("deal_stages.deal_script_template_b2b").step_ids
            ).filtered(lambda step: "deal_paid" in (step.auto_advance_domain or ""))
        )
        self.assertTrue(prepayment_item.required)
        self.assertTrue(
            self.env.ref("deal_stages.deal_script_template_b2b_check_paid_in_full").required
        )
