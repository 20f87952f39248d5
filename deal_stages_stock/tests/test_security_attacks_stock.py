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

    def test_delivery_status_not_written_by_salespeople(self):
        # sale_stock lets salespeople write transfers and moves: a delivery
        # marked done by hand would prove the shipment with nothing shipped
        deal = self._create_b2b_deal(self.step_shipment)
        order = self._confirmed_order(deal)
        delivery = order.picking_ids.with_user(self.user_sales_salesman)
        for records, vals in (
            (delivery, {"state": "done"}),
            (delivery.move_ids, {"state": "done"}),
        ):
            with self.subTest(model=records._name), self.assertRaises(AccessError):
                records.write(vals)
        with self.assertRaises(AccessError):
            self.env["stock.move"].with_user(self.user_sales_salesman).create(
                {
                    "product_id": self.machine.id,
                    "product_uom_qty": 2,
                    "location_id": delivery.location_id.id,
                    "location_dest_id": delivery.location_dest_id.id,
                    "picking_id": delivery.id,
                    "state": "done",
                }
            )
        deal.invalidate_recordset()
        self.assertFalse(deal.deal_delivered)
        self.assertEqual(deal.deal_step_id, self.step_shipment)
        # validated for real, even by the salesperson (Odoo's rights allow
        # it), the delivery proves it
        delivery.move_ids.write({"quantity": 2, "picked": True})
        delivery.button_validate()
        self.assertEqual(delivery.state, "done")
        self.assertTrue(deal.deal_delivered)
