from odoo import Command
from odoo.tests import new_test_user

from odoo.addons.deal_stages.tests.common import DealStagesCommon


class DealInvoicingCommon(DealStagesCommon):
    """The B2B template run by a team, with its orders invoiced and paid.

    ``b2b`` is the B2B template copied for ``team_b2b`` (the bridges'
    conditions included); ``accountant`` may invoice and register payments
    but has no right on deals or sales orders. The product costs 1,000
    (untaxed); ``tax_15`` is a 15 % sales tax.
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
        (
            cls.step_contract,
            cls.step_invoicing,
            cls.step_prepayment,
            cls.step_production,
            cls.step_shipment,
            cls.step_closing,
            cls.step_completion,
        ) = cls.b2b.step_ids.sorted(lambda step: (step.sequence, step.id))
        cls.accountant = new_test_user(
            cls.env,
            login="deal_accountant",
            name="Anna Accountant",
            email="anna.accountant@test.example.com",
            groups="base.group_user,account.group_account_invoice",
        )
        cls.customer = cls.env["res.partner"].create({"name": "Deal Customer"})
        cls.product = cls.env["product.product"].create(
            {
                "name": "Machine",
                "type": "service",
                "invoice_policy": "order",
                "list_price": 1000.0,
                "taxes_id": [Command.clear()],
            }
        )
        cls.tax_15 = cls.env["account.tax"].create(
            {"name": "Sales tax 15 %", "amount": 15.0, "type_tax_use": "sale"}
        )

    def _create_b2b_deal(self, step, revenue=1000.0):
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
                    "expected_revenue": revenue,
                    "stage_id": step.stage_id.id,
                }
            )
            .with_user(self.user_sales_salesman)
        )

    def _confirmed_order(self, deal, quantity=1, taxes=None):
        """A confirmed sales order of the deal (the salesperson confirms it)."""
        order = (
            self.env["sale.order"]
            .with_user(self.user_sales_salesman)
            .create(
                {
                    "partner_id": self.customer.id,
                    "opportunity_id": deal.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product.id,
                                "product_uom_qty": quantity,
                                "tax_ids": [Command.set((taxes or self.tax_15.browse()).ids)],
                            }
                        )
                    ],
                }
            )
        )
        order.action_confirm()
        return order

    def _post_invoice(self, orders):
        """The accountant invoices what the orders have to invoice and posts it."""
        invoice = orders.sudo()._create_invoices().with_user(self.accountant)
        invoice.action_post()
        return invoice

    def _register_payment(self, invoices, amount):
        """The accountant registers a payment with Odoo's payment wizard."""
        wizard = (
            self.env["account.payment.register"]
            .with_user(self.accountant)
            .with_context(active_model="account.move", active_ids=invoices.ids)
            .create({"amount": amount})
        )
        return wizard.action_create_payments()

    def _auto_stays(self, deal):
        return deal.sudo().deal_log_ids.filtered(lambda log: log.cause == "auto").sorted("id")
