from odoo import api, models
from odoo.exceptions import UserError


class SaleOrder(models.Model):
    _name = "sale.order"
    _inherit = ["sale.order", "crm.deal.document.mixin"]

    @api.model_create_multi
    def create(self, vals_list):
        self._deal_verify_opportunities(vals.get("opportunity_id") for vals in vals_list)
        orders = super().create(vals_list)
        orders._deal_auto_advance_documents()
        return orders

    def write(self, vals):
        if "opportunity_id" in vals:
            self._deal_verify_opportunities([vals["opportunity_id"]])
            self._deal_verify_proofs_stay(vals["opportunity_id"])
        # sent, confirmed, cancelled, back to draft: every status change of
        # a quotation (sale's buttons, the email composer, the portal
        # signature, RPC) is a write of its state
        result = super().write(vals)
        if "state" in vals or "opportunity_id" in vals:
            self._deal_auto_advance_documents()
        return result

    def _deal_verify_proofs_stay(self, lead_id):
        """A confirmed or invoiced order proves its deal (confirmed, paid,
        delivered): moved to another deal of the same salesperson (a merge
        included), or an invoiced order given to a deal, it would meet that
        deal's conditions with no document of its own. Supervisors may."""
        if self.env.su or self.env.user.has_group("deal_stages.group_deal_supervisor"):
            return
        moved = self.filtered(
            lambda order: (
                order.opportunity_id.id != (lead_id or False)
                and (order.invoice_ids or (order.state == "sale" and order.opportunity_id))
            )
        )
        if moved:
            raise UserError(
                self.env._(
                    "The order %(order)s is confirmed or invoiced: it proves the conditions "
                    "of its deal and cannot be moved to another one (a supervisor can).",
                    order=moved[0].name,
                )
            )

    def _deal_document_leads(self):
        return self.opportunity_id

    @api.model
    def _deal_verify_opportunities(self, lead_ids):
        """An order proves a deal's conditions (confirmed, paid, delivered):
        only who may edit the deal links an order to it. Sale only checks
        the company, so an order of one deal could move another one."""
        leads = self.env["crm.lead"].browse({lead_id for lead_id in lead_ids if lead_id})
        if leads and not self.env.su:
            leads.check_access("write")
