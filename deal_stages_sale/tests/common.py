from odoo import Command

from odoo.addons.deal_stages.tests.common import DealB2BCommon


class DealSaleCommon(DealB2BCommon):
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
