from odoo.tests import Form, new_test_user

from odoo.addons.deal_stages.tests.common import DealB2BCommon


class DealDeliveryCommon(DealB2BCommon):
    """The B2B template run by a team, with its orders delivered.

    ``storekeeper`` validates deliveries but has no right on deals or sales
    orders; ``machine`` is a storable product with 10 units in stock; a deal
    orders two machines.
    """

    b2b_revenue = 2000.0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.storekeeper = new_test_user(
            cls.env,
            login="deal_storekeeper",
            name="Sam Storekeeper",
            email="sam.storekeeper@test.example.com",
            groups="base.group_user,stock.group_stock_user",
        )
        cls.machine = cls.env["product.product"].create(
            {"name": "Machine", "type": "consu", "is_storable": True, "list_price": 1000.0}
        )
        warehouse = cls.env["stock.warehouse"].search(
            [("company_id", "=", cls.env.company.id)], limit=1
        )
        cls.env["stock.quant"]._update_available_quantity(cls.machine, warehouse.lot_stock_id, 10)

    def _confirmed_order(self, deal, quantity=2):
        return self._b2b_order(deal, self.machine, quantity)

    def _deliver(self, picking, quantity=None, backorder=True, **values):
        """The storekeeper validates the delivery (``quantity``: a part of it)."""
        picking = picking.with_user(self.storekeeper)
        if values:
            picking.write(values)
        if quantity is not None:
            picking.move_ids.write({"quantity": quantity, "picked": True})
        action = picking.button_validate()
        if isinstance(action, dict) and action.get("res_model") == "stock.backorder.confirmation":
            wizard = Form.from_action(picking.env, action).save()
            if backorder:
                wizard.process()
            else:
                wizard.process_cancel_backorder()
