from odoo import api, fields, models


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # stored: auto-advance conditions and list filters search them in SQL
    deal_quotation_sent = fields.Boolean(
        string="Quotation Sent",
        compute="_compute_deal_quotation_state",
        store=True,
        help="A quotation of this deal was sent to the customer (or confirmed).",
    )
    deal_quotation_confirmed = fields.Boolean(
        string="Quotation Confirmed",
        compute="_compute_deal_quotation_state",
        store=True,
        help="A quotation of this deal was confirmed (signed) and became a sales order.",
    )

    @api.model
    def _deal_engine_fields(self):
        # proofs from the quotations: computed from the orders, never written
        return super()._deal_engine_fields() | {"deal_quotation_sent", "deal_quotation_confirmed"}

    @api.depends("order_ids.state")
    def _compute_deal_quotation_state(self):
        # order_ids is read for the whole batch at once (prefetch)
        for lead in self:
            states = set(lead.order_ids.mapped("state"))
            lead.deal_quotation_sent = bool(states & {"sent", "sale"})
            lead.deal_quotation_confirmed = "sale" in states

    def _deal_handoff_payloads(self, values_list):
        # the confirmed quotation's lines, for the endpoints that want them
        payloads = super()._deal_handoff_payloads(values_list)
        for values, payload in zip(values_list, payloads, strict=True):
            # the endpoint's settings are cached: no read of it in the move
            if values["endpoint"]._deal_endpoint_settings().send_order_lines:
                payload["order"] = values["lead"]._deal_handoff_order_data()
        return payloads

    def _deal_handoff_order_data(self):
        """The last confirmed sales order of the deal (None when there is none)."""
        self.ensure_one()
        order = self.order_ids.filtered(lambda o: o.state == "sale").sorted(
            lambda o: (o.date_order, o.id)
        )[-1:]
        if not order:
            return None
        return {
            "name": order.name,
            "client_order_ref": order.client_order_ref or None,
            "date_order": order.date_order.isoformat() if order.date_order else None,
            "amount_untaxed": order.amount_untaxed,
            "amount_tax": order.amount_tax,
            "amount_total": order.amount_total,
            "currency": order.currency_id.name,
            "lines": [
                {
                    "product": line.product_id.display_name or None,
                    "default_code": line.product_id.default_code or None,
                    "description": line.name,
                    "quantity": line.product_uom_qty,
                    "uom": line.product_uom_id.name or None,
                    "price_unit": line.price_unit,
                    "discount": line.discount,
                    "price_subtotal": line.price_subtotal,
                    "price_total": line.price_total,
                }
                for line in order.order_line
                if not line.display_type
            ],
        }
