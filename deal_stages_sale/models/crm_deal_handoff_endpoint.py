from odoo import fields, models


class CrmDealHandoffEndpoint(models.Model):
    _inherit = "crm.deal.handoff.endpoint"

    send_order_lines = fields.Boolean(
        string="Confirmed Quotation",
        default=True,
        help="The lines of the deal's confirmed quotation (sales order).",
    )
