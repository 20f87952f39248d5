from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import DealSaleCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_sale", "deal_stages_security")
class TestAttackSale(DealSaleCommon):
    """H3 / M3 / M7: the quotations' proofs come from the quotations only."""

    @users("user_sales_salesman")
    def test_proofs_not_writable(self):
        deal = self._deals()
        self._tick_signed(deal)
        for name in ("deal_quotation_sent", "deal_quotation_confirmed"):
            with self.subTest(field=name), self.assertRaises(AccessError):
                deal.write({name: True})
        self.assertEqual(deal.deal_step_id, self.step_contract)
        self.assertFalse(self._auto_stays(deal))

    def test_order_of_one_deal_cannot_prove_another(self):
        victim = self._deals().with_user(self.user_sales_manager)
        victim.user_id = self.user_sales_manager
        self._tick_signed(victim.sudo())
        own = self._deals().with_user(self.user_sales_salesman)
        order = self._quotation(own).with_user(self.user_sales_salesman)
        order.action_confirm()
        with self.assertRaises(AccessError):
            order.write({"opportunity_id": victim.id})
        with self.assertRaises(AccessError):
            self.env["sale.order"].with_user(self.user_sales_salesman).create(
                {
                    "partner_id": self.customer.id,
                    "opportunity_id": victim.id,
                    "order_line": [Command.create({"product_id": self.product.id})],
                }
            )
        self.assertEqual(victim.sudo().deal_step_id, self.step_contract)

    def test_broken_next_step_does_not_block_the_confirmation(self):
        """The customer's signature goes through whatever the next step does."""
        self.step_invoicing.server_action_ids = self.env["ir.actions.server"].create(
            {
                "name": "Crash",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "1 / 0",
            }
        )
        deal = self._deals()
        self._tick_signed(deal)
        order = self._quotation(deal)
        with mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security"):
            order.with_user(self.user_sales_salesman).action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertEqual(deal.deal_step_id, self.step_invoicing)
        self.assertIn("Crash", " ".join(deal.message_ids.mapped("body")))
