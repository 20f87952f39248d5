from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import DealDeliveryCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_stock", "deal_stages_security")
class TestAttackStock(DealDeliveryCommon):
    """H3: the delivery proof comes from the deliveries only."""

    def test_delivered_not_writable(self):
        deal = self._create_b2b_deal(self.step_shipment)
        for user in (self.user_sales_salesman, self.user_sales_manager):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                deal.with_user(user).write({"deal_delivered": True})
        self.assertEqual(deal.deal_step_id, self.step_shipment)
        self.assertFalse(deal.deal_delivered)
