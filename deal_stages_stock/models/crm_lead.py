from odoo import api, fields, models


class CrmLead(models.Model):
    _inherit = "crm.lead"

    deal_delivered = fields.Boolean(
        string="Delivered",
        compute="_compute_deal_delivered",
        store=True,
        help="The deal's orders have delivery orders and all of them are done "
        "(cancelled ones aside).",
    )

    @api.model
    def _deal_engine_fields(self):
        # proof from the deliveries: computed from the transfers, never written
        return super()._deal_engine_fields() | {"deal_delivered"}

    @api.depends("order_ids.picking_ids.state", "order_ids.picking_ids.picking_type_code")
    def _compute_deal_delivered(self):
        # one read of the transfers of all the deals; the loop runs in memory
        self.order_ids.picking_ids.fetch(["state", "picking_type_code"])
        for lead in self:
            deliveries = lead.order_ids.picking_ids.filtered(
                lambda picking: (
                    picking.picking_type_code == "outgoing" and picking.state != "cancel"
                )
            )
            lead.deal_delivered = bool(deliveries) and all(
                picking.state == "done" for picking in deliveries
            )
