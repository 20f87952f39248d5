from odoo.tests import tagged

from .common import DealDeliveryCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealDelivery(DealDeliveryCommon):
    """Validating the delivery of a deal's order moves it past Shipment.

    The template's Shipment step also asks for the carrier and the tracking
    reference (the shipment notice gives them to the customer).
    """

    def _shipped_deal(self, step):
        return self._create_b2b_deal(step, deal_carrier="DHL", deal_tracking_ref="JD0123")

    def test_delivered_in_two_parts_moves_once(self):
        deal = self._shipped_deal(self.step_shipment)
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
        deal = self._shipped_deal(self.step_shipment)
        order = self._confirmed_order(deal)
        self._deliver(order.picking_ids, quantity=1, backorder=False)
        self.assertTrue(deal.deal_delivered, "the customer takes one machine only")
        self.assertEqual(deal.deal_step_id, self.step_closing)

    def test_delivered_waits_for_the_gate(self):
        deal = self._create_b2b_deal(self.step_shipment)
        self._deliver(self._confirmed_order(deal).picking_ids)
        self.assertTrue(deal.deal_delivered)
        self.assertEqual(deal.deal_step_id, self.step_shipment, "no tracking reference yet")
        self.assertFalse(self._auto_stays(deal))
        # the salesperson records the shipment: nothing else is missing
        deal.with_user(self.user_sales_salesman).write(
            {"deal_carrier": "DHL", "deal_tracking_ref": "JD0123"}
        )
        self.assertEqual(deal.deal_step_id, self.step_closing)
        self.assertEqual(self._auto_stays(deal).user_id, self.user_sales_salesman)

    def test_delivered_before_the_step_moves_on_arrival(self):
        # delivered while the order is still in production: the deal stays
        # there (no condition), and passes Shipment once it gets there
        deal = self._shipped_deal(self.step_production)
        self._deliver(self._confirmed_order(deal).picking_ids)
        self.assertTrue(deal.deal_delivered)
        self.assertEqual(deal.deal_step_id, self.step_production)
        self.env["mail.activity"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "=", deal.id)]
        ).action_done()
        deal.with_user(self.user_sales_salesman).stage_id = self.step_shipment.stage_id
        self.assertEqual(deal.deal_step_id, self.step_closing)
        stays = deal.sudo().deal_log_ids.sorted("id")[-2:]
        self.assertEqual(stays.mapped("cause"), ["move", "auto"])
