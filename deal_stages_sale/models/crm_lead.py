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
