import base64

from odoo import http
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import DealMessageCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealPortal(HttpCase, DealMessageCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_3.name = "Shipment"
        cls.step_2.mail_template_id = False
        cls.deal.write(
            {
                "expected_revenue": 987654,
                "description": "<p>Internal: customer is price sensitive</p>",
                "deal_tracking_ref": "TRACK-4242",
                "deal_carrier": "Planet Express",
            }
        )
        cls.deal.stage_id = cls.stage_team1_2
        cls.deal._message_log(body="Secret internal note")
        cls.deal.activity_schedule(
            "mail.mail_activity_data_todo",
            summary="Secret activity summary",
            user_id=cls.user_sales_salesman.id,
        )
        cls.other_deal = cls._create_deal(cls.customer, name="Another secret deal")
        cls.other_deal._portal_ensure_token()
        cls.shared_doc, cls.private_doc = cls.env["ir.attachment"].create(
            [
                {
                    "name": "signed-contract.pdf",
                    "datas": base64.b64encode(b"%PDF shared contract"),
                    "res_model": "crm.lead",
                    "res_id": cls.deal.id,
                },
                {
                    "name": "margin-calculation.xlsx",
                    "datas": base64.b64encode(b"private numbers"),
                    "res_model": "crm.lead",
                    "res_id": cls.deal.id,
                },
            ]
        )
        cls.deal.deal_portal_attachment_ids = cls.shared_doc
        cls.url = cls.deal.get_portal_url()

    SECRETS = (
        "987654",
        "987,654",
        "price sensitive",
        "Secret internal note",
        "Secret activity summary",
        "Issue the invoice",
        "Another secret deal",
        "margin-calculation",
    )

    def _assert_not_found_no_leak(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 404)
        for secret in (*self.SECRETS, "Office furniture", "Hubert", "TRACK-4242", "Invoicing"):
            self.assertNotIn(secret, response.text)

    def test_portal_page_with_token(self):
        self.assertEqual(
            self.url, f"/my/deals/{self.deal.id}?access_token={self.deal.access_token}"
        )
        response = self.url_open(self.url)
        self.assertEqual(response.status_code, 200)
        page = response.text
        for step in ("Contract signing", "Invoicing", "Shipment"):
            self.assertIn(step, page)
        self.assertIn("o_deal_portal_step_done", page)
        self.assertIn(
            'Current step: <strong class="o_deal_portal_current_step">Invoicing</strong>', page
        )
        self.assertIn("TRACK-4242", page)
        self.assertIn("signed-contract.pdf", page)
        for secret in self.SECRETS:
            self.assertNotIn(secret, page)

    @mute_logger("odoo.http")
    def test_portal_wrong_token_or_other_deal_token(self):
        base = f"/my/deals/{self.deal.id}"
        self._assert_not_found_no_leak(base)
        self._assert_not_found_no_leak(f"{base}?access_token=wrong-token")
        self._assert_not_found_no_leak(f"{base}?access_token={self.other_deal.access_token}")
        self._assert_not_found_no_leak(f"/my/deals/999999999?access_token={self.deal.access_token}")
        # the other deal's page with this deal's token
        self._assert_not_found_no_leak(
            f"/my/deals/{self.other_deal.id}?access_token={self.deal.access_token}"
        )

    @mute_logger("odoo.http")
    def test_portal_shared_documents_only(self):
        token = self.deal.access_token
        doc_url = f"/my/deals/{self.deal.id}/documents/{self.shared_doc.id}"
        response = self.url_open(f"{doc_url}?access_token={token}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"%PDF shared contract")
        for url in (
            f"/my/deals/{self.deal.id}/documents/{self.private_doc.id}?access_token={token}",
            f"{doc_url}?access_token=wrong",
            f"{doc_url}?access_token={self.other_deal.access_token}",
            doc_url,
        ):
            response = self.url_open(url)
            self.assertEqual(response.status_code, 404, url)
            self.assertNotIn(b"private numbers", response.content)

    def test_customer_email_button_opens_the_page(self):
        """The "View" link of emails to the customer lands on the progress page."""
        response = self.url_open(
            f"/mail/view?model=crm.lead&res_id={self.deal.id}&access_token={self.deal.access_token}"
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn(f"/my/deals/{self.deal.id}", response.url)
        self.assertIn("o_deal_portal_current_step", response.text)

    def test_portal_lost_and_won_deals(self):
        self.deal.action_set_lost()
        response = self.url_open(self.url)
        self.assertEqual(response.status_code, 200)
        self.assertIn("Cancelled", response.text)
        self.assertNotIn("o_deal_portal_current_step", response.text)
        self.deal.action_unarchive()
        self.deal._deal_move_context("override", skip_gate=True).stage_id = self.stage_team1_won
        response = self.url_open(self.url)
        self.assertIn("Completed", response.text)
        self.assertEqual(response.text.count("o_deal_portal_step_done"), 3)

    def test_share_only_the_deal_documents(self):
        foreign = self.env["ir.attachment"].create(
            {
                "name": "other.pdf",
                "datas": base64.b64encode(b"x"),
                "res_model": "crm.lead",
                "res_id": self.other_deal.id,
            }
        )
        with self.assertRaises(ValidationError):
            self.deal.deal_portal_attachment_ids = foreign

    def test_salesperson_previews_without_token(self):
        self.authenticate(self.user_sales_salesman.login, self.user_sales_salesman.login)
        response = self.url_open(f"/my/deals/{self.deal.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Invoicing", response.text)
        action = self.deal.with_user(self.user_sales_salesman).action_deal_preview_portal()
        self.assertEqual(action["url"], self.url)

    def test_token_does_not_open_the_chatter(self):
        lead_model = self.env["crm.lead"].with_user(self.env.ref("base.public_user"))
        self.assertFalse(
            lead_model._get_thread_with_access(self.deal.id, token=self.deal.access_token)
        )

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_rating_over_http(self):
        """The customer rates from the public page: the unhappy branch runs."""
        self.step_2.is_feedback_step = True
        self.deal.sudo().stage_id = self.stage_team1_1
        self.deal.stage_id = self.stage_team1_2
        rating = self.env["rating.rating"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "=", self.deal.id)]
        )
        self.assertTrue(rating)
        self.authenticate(None, None)  # an anonymous visitor's session
        response = self.url_open(f"/rate/{rating.access_token}/1")
        self.assertEqual(response.status_code, 200)
        response = self.url_open(
            f"/rate/{rating.access_token}/submit_feedback",
            data={
                "rate": 1,
                "feedback": "Broken chair",
                "csrf_token": http.Request.csrf_token(self),
            },
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.deal.rating_last_value, 1)
        callback = self.deal.activity_ids.filtered("deal_feedback_callback")
        self.assertEqual(callback.user_id, self.sales_team_1.user_id)
        self.assertIn("Broken chair", callback.note)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_top_rating_over_http_asks_for_review(self):
        self.step_2.is_feedback_step = True
        self.script.review_url = "https://reviews.example.com/us"
        self.deal.sudo().stage_id = self.stage_team1_1
        self.deal.stage_id = self.stage_team1_2
        rating = self.env["rating.rating"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "=", self.deal.id)]
        )
        self.authenticate(None, None)
        with self.mock_mail_gateway():
            response = self.url_open(
                f"/rate/{rating.access_token}/submit_feedback",
                data={
                    "rate": 5,
                    "feedback": "Perfect",
                    "csrf_token": http.Request.csrf_token(self),
                },
            )
        self.assertEqual(response.status_code, 200)
        mail = self._customer_mails(self.customer)
        self.assertEqual(len(mail), 1)
        self.assertIn("https://reviews.example.com/us", mail.body_html)
        self.assertEqual(mail.author_id, self.user_sales_salesman.partner_id)
        self.assertFalse(self.deal.activity_ids.filtered("deal_feedback_callback"))
        self.assertEqual(self.deal.rating_last_value, 5)

    def test_portal_tour_anonymous_sees_current_step(self):
        self.start_tour(self.url, "deal_stages_portal_progress")
