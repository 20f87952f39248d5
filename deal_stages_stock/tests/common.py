from odoo import Command
from odoo.tests import Form, new_test_user

from odoo.addons.deal_stages.tests.common import DealStagesCommon


class DealDeliveryCommon(DealStagesCommon):
    """The B2B template run by a team, with its orders delivered.

    ``b2b`` is the B2B template copied for ``team_b2b`` (the bridges'
    conditions included); ``storekeeper`` validates deliveries but has no
    right on deals or sales orders; ``machine`` is a storable product with
    10 units in stock.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_b2b = cls.env["crm.team"].create(
            {
                "name": "B2B",
                "user_id": cls.user_sales_manager.id,
                "member_ids": [Command.link(cls.user_sales_salesman.id)],
            }
        )
        cls.b2b = cls.env["crm.deal.script"].browse(
            cls.env["crm.deal.script"].action_create_from_template(cls.team_b2b.id)
        )
        steps = cls.b2b.step_ids.sorted(lambda step: (step.sequence, step.id))
        cls.step_production, cls.step_shipment, cls.step_closing = steps[3:6]
        cls.storekeeper = new_test_user(
            cls.env,
            login="deal_storekeeper",
            name="Sam Storekeeper",
            email="sam.storekeeper@test.example.com",
            groups="base.group_user,stock.group_stock_user",
        )
        cls.customer = cls.env["res.partner"].create({"name": "Deal Customer"})
        cls.machine = cls.env["product.product"].create(
            {"name": "Machine", "type": "consu", "is_storable": True, "list_price": 1000.0}
        )
        warehouse = cls.env["stock.warehouse"].search(
            [("company_id", "=", cls.env.company.id)], limit=1
        )
        cls.env["stock.quant"]._update_available_quantity(cls.machine, warehouse.lot_stock_id, 10)

    def _create_b2b_deal(self, step, **values):
        """A B2B deal of the salesperson standing at ``step``.

        Created by the system (an import of a deal in progress): a
        salesperson creates deals at the first step only.
        """
        return (
            self.env["crm.lead"]
            .create(
                {
                    "name": "Order of machines",
                    "type": "opportunity",
                    "team_id": self.team_b2b.id,
                    "user_id": self.user_sales_salesman.id,
                    "partner_id": self.customer.id,
                    "expected_revenue": 2000.0,
                    "stage_id": step.stage_id.id,
                    **values,
                }
            )
            .with_user(self.user_sales_salesman)
        )

    def _confirmed_order(self, deal, quantity=2):
        order = (
            self.env["sale.order"]
            .with_user(self.user_sales_salesman)
            .create(
                {
                    "partner_id": self.customer.id,
                    "opportunity_id": deal.id,
                    "order_line": [
                        Command.create({"product_id": self.machine.id, "product_uom_qty": quantity})
                    ],
                }
            )
        )
        order.action_confirm()
        return order

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

    def _auto_stays(self, deal):
        return deal.sudo().deal_log_ids.filtered(lambda log: log.cause == "auto").sorted("id")
