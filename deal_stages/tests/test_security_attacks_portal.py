import base64

from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import DealMessageCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackPortal(HttpCase, DealMessageCommon):
    """L3: the progress page's token is the system's, the page customer-facing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_2.mail_template_id = False
        cls.deal.name = "Office furniture - 20% discount approved by Bob"
        cls.deal._portal_ensure_token()

    def _status(self, url):
        return self.url_open(url, allow_redirects=False).status_code

    def test_token_cannot_be_chosen(self):
        deal = self.deal.with_user(self.user_sales_salesman)
        with self.assertRaises(AccessError):
            deal.write({"access_token": "1"})
        with mute_logger("odoo.http"):
            self.assertEqual(self._status(f"/my/deals/{self.deal.id}?access_token=1"), 404)

    @mute_logger("odoo.http")
    def test_token_rotated_on_customer_change(self):
        old_url = self.deal.get_portal_url()
        self.assertEqual(self._status(old_url), 200)
        other = self.env["res.partner"].create({"name": "New customer", "email": "n@example.com"})
        self.deal.with_user(self.user_sales_salesman).write({"partner_id": other.id})
        self.assertEqual(self._status(old_url), 404, "the first customer's link is dead")
        self.assertEqual(self._status(self.deal.get_portal_url()), 200)

    @mute_logger("odoo.http")
    def test_token_rotated_on_demand(self):
        old_url = self.deal.get_portal_url()
        self.deal.with_user(self.user_sales_salesman).action_deal_rotate_portal_token()
        self.assertEqual(self._status(old_url), 404)
        self.assertEqual(self._status(self.deal.get_portal_url()), 200)

    def test_page_shows_customer_facing_names_only(self):
        response = self.url_open(self.deal.get_portal_url())
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("discount approved", response.text)
        self.assertNotIn(self.user_sales_salesman.email, response.text)
        self.assertIn(self.user_sales_salesman.name, response.text)

    @mute_logger("odoo.http")
    def test_url_document_is_no_redirect(self):
        link = self.env["ir.attachment"].create(
            {
                "name": "catalogue",
                "type": "url",
                "url": "https://evil.example.com/phish",
                "res_model": "crm.lead",
                "res_id": self.deal.id,
            }
        )
        self.deal.deal_portal_attachment_ids = link
        url = f"/my/deals/{self.deal.id}/documents/{link.id}?access_token={self.deal.access_token}"
        response = self.url_open(url, allow_redirects=False)
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("evil.example.com", response.headers.get("Location", ""))
        page = self.url_open(self.deal.get_portal_url()).text
        self.assertNotIn(f"/documents/{link.id}", page)
        # a file is still served
        doc = self.env["ir.attachment"].create(
            {
                "name": "contract.pdf",
                "datas": base64.b64encode(b"%PDF x"),
                "res_model": "crm.lead",
                "res_id": self.deal.id,
            }
        )
        self.deal.deal_portal_attachment_ids = doc
        response = self.url_open(
            f"/my/deals/{self.deal.id}/documents/{doc.id}?access_token={self.deal.access_token}"
        )
        self.assertEqual(response.status_code, 200)
