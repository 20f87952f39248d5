from odoo.tests import tagged

from .common import DealDeliveryCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealDelivery(DealDeliveryCommon):
    """Validating the delivery of a deal's order moves it past Shipment."""

    def test_delivered_in_two_parts_moves_once(self):
        deal = self._create_b2b_deal(self.step_shipment)
        order = self._confirmed_order(deal)
        self.assertFalse(deal.deal_delivered)

        self._deliver(order.picking_ids, quantity=1)
        self.assertEqual(len(order.picking_ids), 2, "a backorder for the second machine")
        self.assertFalse(deal.deal_delivered, "half delivered")
        self.assertEqual(deal.deal_step_id, self.step_shipment)
        self.assertFalse(self._auto_stays(deal))

        self._deliver(order.picking_ids.filtered(lambda picking: picking.state != "done"))
        self.assertTrue(deal.deal_delivered)
        # Closing waits for the payment: one step only
        self.assertEqual(deal.deal_step_id, self.step_closing)
        stay = self._auto_stays(deal)
        self.assertEqual(len(stay), 1)
        self.assertEqual(stay.from_step_id, self.step_shipment)
        self.assertEqual(stay.note, "Condition met: Delivered")
        # the storekeeper, who has no right on deals, moved it by validating
        self.assertEqual(stay.user_id, self.storekeeper)

    def test_backorder_cancelled_ends_the_delivery(self):
        deal = self._create_b2b_deal(self.step_shipment)
        order = self._confirmed_order(deal)
        self._deliver(order.picking_ids, quantity=1, backorder=False)
        self.assertTrue(deal.deal_delivered, "the customer takes one machine only")
        self.assertEqual(deal.deal_step_id, self.step_closing)

    def test_delivered_before_the_step_moves_when_the_gate_allows(self):
        # delivered while the order is still in production: the deal stays
        # there (no condition) and leaves Shipment by itself once it gets there
        deal = self._create_b2b_deal(self.step_production)
        self._deliver(self._confirmed_order(deal).picking_ids)
        self.assertTrue(deal.deal_delivered)
        self.assertEqual(deal.deal_step_id, self.step_production)
