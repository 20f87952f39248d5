from collections import defaultdict

from odoo import api, models

# the delivery's fields copied to the deal, for the customer's shipment notice
DEAL_SHIPPING_FIELDS = {"carrier_id", "carrier_tracking_ref"}


class StockPicking(models.Model):
    _inherit = "stock.picking"

    @api.model_create_multi
    def create(self, vals_list):
        pickings = super().create(vals_list)
        if any(DEAL_SHIPPING_FIELDS.intersection(vals) for vals in vals_list):
            pickings._deal_update_shipping()
        return pickings

    def write(self, vals):
        result = super().write(vals)
        if DEAL_SHIPPING_FIELDS.intersection(vals):
            self._deal_update_shipping()
        return result

    def _deal_update_shipping(self):
        """Copy the carriers and tracking references of the deals' deliveries
        to the deals (``deal_carrier``, ``deal_tracking_ref``).

        A deal with several deliveries lists them all; a deal whose deliveries
        have none keeps what the salesperson typed.
        """
        # sudo: the warehouse user who ships need not read sales orders or
        # edit deals; only these two fields of the deals are written
        leads = (
            self.sudo()
            .filtered(lambda picking: picking.picking_type_code == "outgoing")
            .sale_id.opportunity_id
        )
        # deals written together when they get the same values
        leads_by_values = defaultdict(lambda: self.env["crm.lead"].sudo())
        for lead in leads:
            deliveries = lead.order_ids.picking_ids.filtered(
                lambda picking: (
                    picking.picking_type_code == "outgoing" and picking.state != "cancel"
                )
            ).sorted("id")
            values = {}
            carriers = list(dict.fromkeys(deliveries.carrier_id.mapped("name")))
            if carriers:
                values["deal_carrier"] = ", ".join(carriers)
            refs = list(
                dict.fromkeys(
                    ref.strip()
                    for picking in deliveries
                    for ref in (picking.carrier_tracking_ref or "").split(",")
                    if ref.strip()
                )
            )
            if refs:
                values["deal_tracking_ref"] = ", ".join(refs)
            changed = tuple((name, value) for name, value in values.items() if lead[name] != value)
            if changed:
                leads_by_values[changed] |= lead
        for values, deals in leads_by_values.items():
            deals.write(dict(values))
