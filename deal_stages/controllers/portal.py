from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, MissingError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal


class DealPortal(CustomerPortal):
    """The customer progress page of a deal, opened with the deal's token."""

    def _deal_verify_access(self, lead_id, access_token):
        """The deal (as superuser) if the visitor may see it, else 404.

        Missing deal, wrong or missing token: the same 404, so that nothing
        tells whether a deal exists.
        """
        try:
            return self._document_check_access("crm.lead", lead_id, access_token=access_token)
        except (AccessError, MissingError):
            raise NotFound() from None

    @http.route("/my/deals/<int:lead_id>", type="http", auth="public", website=True)
    def deal_portal_page(self, lead_id, access_token=None, **kw):
        lead_sudo = self._deal_verify_access(lead_id, access_token)
        lang = lead_sudo.partner_id.lang
        if lang and request.env.user._is_public():
            # an anonymous visitor comes from the customer's email: speak its language
            request.update_context(lang=lang)
            lead_sudo = lead_sudo.with_context(lang=lang)
        values = lead_sudo._deal_portal_values()
        values["access_token"] = access_token
        return request.render(
            "deal_stages.deal_portal_page", values, headers={"X-Robots-Tag": "noindex"}
        )

    @http.route(
        "/my/deals/<int:lead_id>/documents/<int:attachment_id>",
        type="http",
        auth="public",
        website=True,
    )
    def deal_portal_document(self, lead_id, attachment_id, access_token=None, **kw):
        lead_sudo = self._deal_verify_access(lead_id, access_token)
        attachment = lead_sudo.deal_portal_attachment_ids.filtered(
            lambda att: (
                att.id == attachment_id
                and att.res_model == "crm.lead"
                and att.res_id == lead_sudo.id
            )
        )
        if not attachment:
            raise NotFound()
        return (
            request.env["ir.binary"]._get_stream_from(attachment).get_response(as_attachment=True)
        )
