from odoo.tests import tagged

from odoo.addons.deal_stages_stock.tests.common import DealDeliveryCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealShipping(DealDeliveryCommon):
    """The carrier and tracking reference of the deliveries reach the deal."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        shipping = cls.env["product.product"].create({"name": "Freight", "type": "service"})
        cls.carrier = cls.env["delivery.carrier"].create(
            {"name": "Fast Freight", "product_id": shipping.id, "delivery_type": "fixed"}
        )

    def test_tracking_reference_of_each_delivery(self):
        deal = self._create_b2b_deal(self.step_production, deal_tracking_ref="typed by hand")
        order = self._confirmed_order(deal)
        self.assertFalse(deal.deal_carrier)
        self.assertEqual(deal.deal_tracking_ref, "typed by hand", "no delivery reference yet")

        self._deliver(
            order.picking_ids,
            quantity=1,
            carrier_id=self.carrier.id,
            carrier_tracking_ref="FF-001",
        )
        self.assertEqual(deal.deal_carrier, "Fast Freight")
        self.assertEqual(deal.deal_tracking_ref, "FF-001")

        # the second machine leaves with its own number: the customer gets both
        backorder = order.picking_ids.filtered(lambda picking: picking.state != "done")
        self._deliver(backorder, carrier_tracking_ref="FF-002")
        self.assertEqual(deal.deal_tracking_ref, "FF-001, FF-002")

    def test_delivery_completes_the_shipment_step(self):
        # the Shipment step asks for the carrier and the tracking reference:
        # the delivery gives them, the deal moves on with nothing typed
        deal = self._create_b2b_deal(self.step_shipment)
        self._deliver(
            self._confirmed_order(deal).picking_ids,
            carrier_id=self.carrier.id,
            carrier_tracking_ref="FF-003",
        )
        self.assertEqual(deal.deal_step_id, self.step_closing)
        self.assertEqual(self._auto_stays(deal).from_step_id, self.step_shipment)
