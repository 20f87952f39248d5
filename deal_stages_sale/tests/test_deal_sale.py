import json

from odoo.tests import tagged, users

from ..hooks import post_init_hook, uninstall_hook
from .common import DealSaleCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_sale")
class TestDealSale(DealSaleCommon):
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

    def test_handoff_carries_the_confirmed_quotation(self):
        endpoint = self.env["crm.deal.handoff.endpoint"].create(
            {"name": "1C", "url": "http://127.0.0.1:9/handoff"}
        )
        deal = self._deals()
        self._quotation(deal).action_confirm()
        handoff = self.env["crm.deal.handoff"]._create_handoffs(
            [{"lead": deal, "endpoint": endpoint, "step": self.step_contract, "kind": "order"}]
        )
        order = json.loads(handoff.payload)["order"]
        self.assertEqual(order["name"], deal.order_ids.name)
        self.assertEqual(
            [(line["product"], line["quantity"]) for line in order["lines"]], [("Pallet", 25.0)]
        )
        self.assertEqual(json.loads(handoff.payload)["customer"]["name"], "Pallets Ltd")
        endpoint.send_order_lines = False
        handoff = self.env["crm.deal.handoff"]._create_handoffs(
            [{"lead": deal, "endpoint": endpoint, "step": self.step_contract, "kind": "order"}]
        )
        self.assertNotIn("order", json.loads(handoff.payload))
