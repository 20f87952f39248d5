from odoo import api, fields, models
from odoo.exceptions import UserError

# the customer documents counted on a deal: invoices, net of their credit notes
DEAL_INVOICE_TYPES = ("out_invoice", "out_refund")
# a marker only an applied order change puts in the context (an RPC context
# is JSON): the recorded way to lower the amount of an ordered deal
DEAL_REVENUE_CHANGE = object()


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # amounts are untaxed, like the expected revenue they are compared with
    deal_invoiced_amount = fields.Monetary(
        string="Invoiced",
        currency_field="company_currency",
        compute="_compute_deal_invoicing",
        store=True,
        help="Untaxed amount of the posted customer invoices of the deal's orders, "
        "minus their posted credit notes.",
    )
    deal_paid_amount = fields.Monetary(
        string="Paid",
        currency_field="company_currency",
        compute="_compute_deal_invoicing",
        store=True,
        help="The paid part of the invoiced amount, taxes excluded: an invoice paid "
        "by half counts for half of its untaxed amount.",
    )
    deal_paid_ratio = fields.Float(
        string="Paid (%)",
        digits=(16, 2),
        compute="_compute_deal_invoicing",
        store=True,
        aggregator="avg",
        help="The paid amount in percent of the deal's amount: the highest of its "
        "expected revenue, its confirmed orders less their credit notes, and the "
        "invoiced amount. A step waits for a prepayment of 30 % with the auto-advance "
        "condition Paid (%) >= 30.",
    )
    deal_invoice_posted = fields.Boolean(
        string="Invoice Posted",
        compute="_compute_deal_invoicing",
        store=True,
        help="At least one customer invoice of the deal's orders is posted.",
    )
    deal_invoiced_in_full = fields.Boolean(
        string="Invoiced in Full",
        compute="_compute_deal_invoicing",
        store=True,
        help="Posted invoices cover the deal's amount: its expected revenue, or its "
        "confirmed orders less their credit notes when that is higher. After an order "
        "change of the amount, it waits for an invoice or credit note of the change.",
    )
    deal_invoice_pending = fields.Boolean(
        string="Awaiting Invoice Update",
        readonly=True,
        copy=False,
        help="An order change altered the deal's amount: it counts as invoiced in full "
        "again only once an invoice or a credit note of its orders is posted.",
    )
    deal_paid_in_full = fields.Boolean(
        string="Paid in Full",
        compute="_compute_deal_invoicing",
        store=True,
        help="Invoiced in full, and the invoices are paid.",
    )

    @api.model
    def _deal_engine_fields(self):
        # proofs from the invoices and payments: computed from the documents
        return super()._deal_engine_fields() | {
            "deal_invoiced_amount",
            "deal_paid_amount",
            "deal_paid_ratio",
            "deal_invoice_posted",
            "deal_invoiced_in_full",
            "deal_invoice_pending",
            "deal_paid_in_full",
        }

    def write(self, vals):
        if "expected_revenue" in vals:
            self._deal_verify_revenue_lowering(vals["expected_revenue"])
        return super().write(vals)

    def _deal_verify_revenue_lowering(self, revenue):
        """Refuse to lower the amount of a deal already ordered or invoiced.

        The paid ratio and "invoiced in full" compare the documents with the
        expected revenue: lowered by hand after the order, it would make a
        prepayment look paid. The amount then goes down only through an
        order change, recorded, announced to the team leader, and waiting for
        the credit note (``deal_invoice_pending``).
        """
        if self.env.su or self.env.context.get("deal_revenue_change") is DEAL_REVENUE_CHANGE:
            return
        try:
            # as the field converts it: an amount sent as text is compared too
            revenue = float(revenue or 0.0)
        except (TypeError, ValueError):
            return  # not an amount: the field itself refuses it
        # the documents decide, whoever may read them
        lowered = self.sudo().filtered(
            lambda lead: (
                (lead.deal_invoice_posted or lead.deal_quotation_confirmed)
                and (lead.company_currency or self.env.company.currency_id).compare_amounts(
                    revenue, lead.expected_revenue
                )
                < 0
            )
        )
        if lowered:
            raise UserError(
                self.env._(
                    "The deal %(deal)s has a confirmed order or a posted invoice: its expected "
                    "revenue can no longer be lowered by hand (the share paid is measured "
                    "against it). Record an order change (a decrease) instead.",
                    deal=lowered[0].display_name,
                )
            )

    @api.depends(
        "expected_revenue",
        "deal_invoice_pending",
        "order_ids.state",
        "order_ids.amount_untaxed",
        "order_ids.order_line.invoice_lines.move_id.state",
        "order_ids.order_line.invoice_lines.move_id.amount_untaxed_signed",
        "order_ids.order_line.invoice_lines.move_id.amount_total_signed",
        "order_ids.order_line.invoice_lines.move_id.amount_residual_signed",
    )
    def _compute_deal_invoicing(self):
        # one read of the documents of all the deals; the loop runs in memory
        self.order_ids.order_line.invoice_lines.move_id.fetch(
            [
                "state",
                "move_type",
                "amount_untaxed_signed",
                "amount_total_signed",
                "amount_residual_signed",
            ]
        )
        for lead in self:
            currency = lead.company_currency or self.env.company.currency_id
            invoices = lead.order_ids.order_line.invoice_lines.move_id.filtered(
                lambda move: move.state == "posted" and move.move_type in DEAL_INVOICE_TYPES
            )
            invoiced = paid = 0.0
            for move in invoices:
                invoiced += move.amount_untaxed_signed
                if move.amount_total_signed:
                    paid_share = 1 - move.amount_residual_signed / move.amount_total_signed
                    paid += move.amount_untaxed_signed * paid_share
            invoiced, paid = currency.round(invoiced), currency.round(paid)
            base = max(lead.expected_revenue, lead._deal_ordered_amount(invoices), invoiced)
            posted = any(move.move_type == "out_invoice" for move in invoices)
            in_full = (
                posted
                and not lead.deal_invoice_pending
                and currency.compare_amounts(invoiced, 0.0) > 0
                and currency.compare_amounts(invoiced, base) >= 0
            )
            lead.deal_invoiced_amount = invoiced
            lead.deal_paid_amount = paid
            lead.deal_paid_ratio = round(paid * 100 / base, 2) if base > 0 else 0.0
            lead.deal_invoice_posted = posted
            lead.deal_invoiced_in_full = in_full
            lead.deal_paid_in_full = in_full and currency.compare_amounts(paid, base) >= 0

    def _deal_ordered_amount(self, invoices):
        """What the customer owes by the documents: the untaxed amount of the
        deal's confirmed orders, in the company's currency, less the posted
        credit notes among ``invoices``.

        The deal's amount is never below it: the expected revenue is the
        salesperson's (lowered before the order, or by an order change
        without a credit note), the orders and credit notes are not.
        """
        self.ensure_one()
        currency = self.company_currency or self.env.company.currency_id
        ordered = sum(
            order.currency_id._convert(
                order.amount_untaxed,
                currency,
                order.company_id,
                order.date_order or fields.Date.context_today(self),
            )
            for order in self.order_ids
            if order.state == "sale"
        )
        refunded = sum(
            invoices.filtered(lambda move: move.move_type == "out_refund").mapped(
                "amount_untaxed_signed"
            )
        )
        return currency.round(ordered + refunded)
