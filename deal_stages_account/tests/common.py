from odoo import Command
from odoo.tests import new_test_user

from odoo.addons.deal_stages.tests.common import DealB2BCommon


class DealInvoicingCommon(DealB2BCommon):
    """The B2B template run by a team, with its orders invoiced and paid.

    ``accountant`` may invoice and register payments but has no right on
    deals or sales orders. The product costs 1,000 (untaxed); ``tax_15`` is
    a 15 % sales tax.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accountant = new_test_user(
            cls.env,
            login="deal_accountant",
            name="Anna Accountant",
            email="anna.accountant@test.example.com",
            groups="base.group_user,account.group_account_invoice",
        )
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

    def _confirmed_order(self, deal, quantity=1, taxes=None):
        """A confirmed sales order of the deal (the salesperson confirms it)."""
        return self._b2b_order(
            deal,
            self.product,
            quantity,
            tax_ids=[Command.set((taxes or self.tax_15.browse()).ids)],
        )

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
