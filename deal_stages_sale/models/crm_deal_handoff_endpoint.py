from odoo import fields, models

from odoo.addons.deal_stages.models.crm_deal_handoff_endpoint import (
    CrmDealHandoffEndpoint as DealStagesEndpoint,
)


class CrmDealHandoffEndpoint(models.Model):
    _inherit = "crm.deal.handoff.endpoint"
    # the moves read it from the endpoints' cache (_deal_endpoint_config)
    _deal_config_fields = DealStagesEndpoint._deal_config_fields | {"send_order_lines"}

    send_order_lines = fields.Boolean(
        string="Confirmed Quotation",
        default=True,
        help="The lines of the deal's confirmed quotation (sales order).",
    )
