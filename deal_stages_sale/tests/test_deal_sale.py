from odoo import Command
from odoo.tests import tagged, users

from odoo.addons.deal_stages.tests.common import DealB2BCommon

from ..hooks import post_init_hook, uninstall_hook


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_sale")
class TestDealSale(DealB2BCommon):
    """The B2B template; quotations made from its deals."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.check_signed = cls.step_contract.check_ids.filtered("required")
        cls.customer = cls.env["res.partner"].create(
            {"name": "Pallets Ltd", "email": "orders@pallets.example.com"}
        )
        cls.product = cls.env["product.product"].create({"name": "Pallet", "list_price": 40.0})

    def _deals(self, count=1):
        return self.env["crm.lead"].create(
            [
                {
                    "name": f"Pallets {index}",
                    "type": "opportunity",
                    "team_id": self.team_b2b.id,
                    "user_id": self.user_sales_salesman.id,
                    "partner_id": self.customer.id,
                }
                for index in range(count)
            ]
        )

    def _quotation(self, deal):
        """A quotation made with the deal's "New Quotation" button."""
        context = deal.action_sale_quotations_new()["context"]
        return (
            self.env["sale.order"]
            .with_context(**context)
            .create(
                {
                    "order_line": [
                        Command.create({"product_id": self.product.id, "product_uom_qty": 25})
                    ]
                }
            )
        )

    def _tick_signed(self, deals):
        deals.deal_check_ids.filtered(lambda c: c.check_id == self.check_signed).write(
            {"done": True}
        )

    def test_template_condition(self):
        template_step = self.env.ref("deal_stages.deal_script_template_b2b_step_contract")
        self.assertEqual(
            template_step.auto_advance_domain, '[("deal_quotation_confirmed", "=", True)]'
        )
        self.assertEqual(self.step_contract.auto_advance_domain, template_step.auto_advance_domain)
        self.assertEqual(self.step_contract.auto_advance_label, "Quotation confirmed")

    @users("user_sales_salesman")
    def test_confirmed_quotation_moves_one_step(self):
        deal = self._deals()
        self.assertEqual(deal.deal_step_id, self.step_contract)
        order = self._quotation(deal)
        self.assertEqual(order.opportunity_id, deal)
        self.assertFalse(deal.deal_quotation_sent)
        order.action_quotation_sent()
        self.assertTrue(deal.deal_quotation_sent)
        self.assertFalse(deal.deal_quotation_confirmed)
        self._tick_signed(deal)
        self.assertEqual(deal.deal_step_id, self.step_contract, "sent is not signed")
        order.action_confirm()
        self.assertTrue(deal.deal_quotation_confirmed)
        self.assertEqual(deal.deal_step_id, self.step_invoicing, "exactly one step")
        stay = self._auto_stays(deal)
        self.assertEqual(len(stay), 1)
        self.assertEqual(stay.from_step_id, self.step_contract)
        self.assertEqual(stay.note, "Condition met: Quotation confirmed")
        self.assertEqual(stay.user_id, self.user_sales_salesman)
        # the Invoicing step's entry work is done, as for a manual move
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))

    @users("user_sales_salesman")
    def test_unmet_gate_holds_until_met(self):
        deal = self._deals()
        order = self._quotation(deal)
        order.action_confirm()
        # the signed contract is not ticked: the deal waits, without error
        self.assertEqual(deal.deal_step_id, self.step_contract)
        self.assertFalse(self._auto_stays(deal))
        self._tick_signed(deal)
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self.assertEqual(len(self._auto_stays(deal)), 1)

    @users("user_sales_salesman")
    def test_orders_confirmed_together(self):
        deals = self._deals(3)
        self._tick_signed(deals)
        orders = self.env["sale.order"].concat(*(self._quotation(deal) for deal in deals))
        orders[0].action_cancel()
        orders.filtered(lambda o: o.state == "draft").action_confirm()
        self.assertEqual(deals[0].deal_step_id, self.step_contract, "a cancelled quotation")
        self.assertFalse(deals[0].deal_quotation_confirmed)
        self.assertEqual(set(deals[1:].mapped("deal_step_id")), {self.step_invoicing})

    def test_install_updates_steps_created_from_the_template(self):
        other = self.b2b.step_ids.sorted("sequence")[2]
        self.step_contract.auto_advance_domain = False
        other.auto_advance_domain = "[('expected_revenue', '>', 0)]"
        post_init_hook(self.env)
        self.assertEqual(
            self.step_contract.auto_advance_domain, '[("deal_quotation_confirmed", "=", True)]'
        )
        self.assertEqual(other.auto_advance_domain, "[('expected_revenue', '>', 0)]")
        # uninstalled, no condition names its fields any more
        uninstall_hook(self.env)
        self.assertFalse(self.step_contract.auto_advance_domain)
        self.assertFalse(
            self.env.ref("deal_stages.deal_script_template_b2b_step_contract").auto_advance_domain
        )
        self.assertEqual(other.auto_advance_domain, "[('expected_revenue', '>', 0)]")
