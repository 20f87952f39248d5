from odoo import models


class CrmDealDocumentMixin(models.AbstractModel):
    """A business document whose events may move its deals on.

    The bridges list it in the ``_inherit`` of their documents (sales order,
    invoice, delivery), say which deals a document belongs to
    (``_deal_document_leads``) and call ``_deal_auto_advance_documents``
    after each event that may meet a step's auto-advance condition (sent,
    confirmed, posted, paid, delivered, cancelled).
    """

    _name = "crm.deal.document.mixin"
    _description = "Deal Document"

    def _deal_document_leads(self):
        """The deals of the documents ``self`` (called as superuser)."""
        return self.env["crm.lead"]

    def _deal_auto_advance_documents(self):
        """Let the deals of these documents move on if their step's condition holds.

        One call for all the documents' deals; none while a batch defers it
        (``deal_auto_advance_deferred``: the batch calls it once at its end).
        """
        if (
            self.env.context.get("deal_auto_advance_deferred")
            or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids()
        ):
            return
        # sudo: whoever changes the document (the warehouse, the accountant,
        # the customer signing on the portal) need not read sales orders or
        # deals; the deals move as the script's system action, logged as such
        # (cause "auto", the user who triggered it)
        leads = self.sudo()._deal_document_leads()
        if leads:
            leads._deal_auto_advance_written()
