import smtplib

from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tools.discuss import Store

from .common import DealMessageCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealCustomerMessages(DealMessageCommon):
    def test_b2b_template_wiring(self):
        """The shipped B2B template sends a message at each step; shipment needs its references."""
        steps = self.env.ref("deal_stages.deal_script_template_b2b").step_ids
        self.assertTrue(all(steps.mapped("mail_template_id")))
        shipment = self.env.ref("deal_stages.deal_script_template_b2b_step_shipment")
        self.assertEqual(
            set(shipment.required_field_ids.mapped("name")), {"deal_tracking_ref", "deal_carrier"}
        )
        self.assertEqual(shipment.mail_mode, "propose")
        completion = self.env.ref("deal_stages.deal_script_template_b2b_step_completion")
        self.assertTrue(completion.is_feedback_step)
        self.assertEqual(completion.mail_mode, "auto")
        # a script created from the template keeps the messages
        team = self.env["crm.team"].create({"name": "Export"})
        script = self.env["crm.deal.script"].browse(
            self.env["crm.deal.script"].action_create_from_template(team.id)
        )
        self.assertEqual(
            script.step_ids.mapped("mail_template_id"), steps.mapped("mail_template_id")
        )

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_auto_queues_one_email_per_entry(self):
        deal = self.deal
        self.assertEqual(deal.stage_id, self.stage_team1_1)
        with self.mock_mail_gateway():
            self._move(deal, self.stage_team1_2)
        self.assertEqual(deal.stage_id, self.stage_team1_2)
        mails = self._customer_mails(self.customer)
        self.assertEqual(len(mails), 1, "exactly one email to the customer")
        self.assertEqual(len(self._new_mails), 1, "nobody else is emailed (no follower copies)")
        self.assertFalse(self._mails, "queued: nothing is sent during the move")
        self.assertMailMail(
            self.customer,
            "outgoing",
            author=self.user_sales_salesman.partner_id,
            content="is now in production",
        )
        self.assertIn("Your order is in production", mails.subject)
        # the customer's reply goes to the sales team's alias, as for any post
        self.assertIn(f"{self.sales_team_1.alias_name}@", mails.reply_to)
        # the progress page link, with the deal's token
        self.assertTrue(deal.access_token)
        self.assertIn(f"/my/deals/{deal.id}?access_token={deal.access_token}", mails.body_html)
        # logged in the chatter as a message to the customer
        message = deal.message_ids.filtered(
            lambda m: m.subtype_id == self.env.ref("mail.mt_comment")
        )
        self.assertEqual(len(message), 1)
        self.assertEqual(message.partner_ids, self.customer)
        self.assertEqual(message.message_type, "comment")
        note = deal.message_ids.filtered(lambda m: "sent to hubert@planet.example.com" in m.body)
        self.assertTrue(note.subtype_id.internal, "the engine's report is an internal note")

        # back and in again: one more email, for the new entry
        self._move(deal, self.stage_team1_1, user=self.user_sales_manager)
        with self.mock_mail_gateway():
            self._move(deal, self.stage_team1_2)
        self.assertEqual(len(self._customer_mails(self.customer)), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_auto_renders_in_customer_language(self):
        """Moved together, a Russian and an English customer each get their language."""
        self.env["res.lang"]._activate_lang("ru_RU")
        template = self.template
        template.update_field_translations(
            "subject",
            {
                "ru_RU": "{{ (object.company_id or user.company_id).name }}: "
                "Ваш заказ в производстве {{ object.name or '' }}"
            },
        )
        body_en = template.with_context(lang="en_US").body_html
        template.update_field_translations(
            "body_html",
            {
                "ru_RU": body_en.replace(
                    "Good news: your order", "Хорошие новости: ваш заказ"
                ).replace("is now in production.", "уже в производстве.")
            },
        )
        russian = self.env["res.partner"].create(
            {"name": "Иван Петров", "email": "ivan@example.ru", "lang": "ru_RU"}
        )
        deal_ru = self._create_deal(russian, name="Стулья")
        deals = self.deal | deal_ru
        with self.mock_mail_gateway():
            self._move(deals, self.stage_team1_2)
        mail_ru = self._customer_mails(russian)
        mail_en = self._customer_mails(self.customer)
        self.assertEqual(len(mail_ru), 1)
        self.assertEqual(len(mail_en), 1)
        self.assertIn("Ваш заказ в производстве Стулья", mail_ru.subject)
        self.assertIn("Хорошие новости: ваш заказ", mail_ru.body_html)
        self.assertIn("уже в производстве.", mail_ru.body_html)
        self.assertIn("Your order is in production", mail_en.subject)
        self.assertIn("Good news: your order", mail_en.body_html)
        self.assertNotIn("Хорошие", mail_en.body_html)

    def test_batch_one_create_for_many_deals(self):
        """A batch of deals: their emails and chatter messages are created at once."""
        deals = self.env["crm.lead"]
        partners = self.env["res.partner"]
        for index in range(5):
            partner = self.env["res.partner"].create(
                {"name": f"Customer {index}", "email": f"customer{index}@example.com"}
            )
            partners |= partner
            deals |= self._create_deal(partner, name=f"Deal {index}")
        with self.mock_mail_gateway():
            self._move(deals, self.stage_team1_2)
            # the gateway's spy on mail.mail's create
            self.assertEqual(
                self.mail_mail_create_mocked.call_count, 1, "one create for the whole batch"
            )
        self.assertEqual(len(self._new_mails), 5)
        self.assertEqual(set(self._new_mails.mapped("state")), {"outgoing"})
        for deal, partner in zip(deals, partners, strict=True):
            mail = self._customer_mails(partner)
            self.assertEqual(len(mail), 1)
            self.assertEqual(mail.res_id, deal.id)
            self.assertIn(deal.name, mail.subject)
            message = deal.message_ids.filtered(lambda m: m.message_type == "comment")
            self.assertEqual(message, mail.mail_message_id)
            self.assertEqual(message.partner_ids, partner)

    @users("user_sales_salesman")
    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_propose_creates_activity_and_sends_nothing(self):
        self.step_2.sudo().mail_mode = "propose"
        deal = self.deal.with_env(self.env)
        with self.mock_mail_gateway():
            deal.stage_id = self.stage_team1_2
        self.assertFalse(self._new_mails, "propose sends nothing")
        self.assertFalse(deal.message_ids.filtered(lambda m: m.message_type == "comment"))
        activity = deal.activity_ids.filtered(lambda a: a.deal_mail_template_id == self.template)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.user_sales_salesman)
        self.assertEqual(activity.summary, "Send “Deal: Order in production”")
        self.assertEqual(activity.activity_type_id, self.env.ref("mail.mail_activity_data_email"))
        # the chatter offers the message: "Preview" (composer) and "Send Now"
        data = Store().add(activity).get_result()
        activity_data = next(a for a in data["mail.activity"] if a["id"] == activity.id)
        self.assertIn(self.template.id, activity_data["mail_template_ids"])

        # re-entry while the proposal is open: no duplicate
        deal.sudo().stage_id = self.stage_team1_1
        deal.stage_id = self.stage_team1_2
        self.assertEqual(
            len(deal.activity_ids.filtered(lambda a: a.deal_mail_template_id == self.template)), 1
        )

        # preview: the composer opens pre-filled (as the chatter's button does),
        # the salesperson edits and sends; the activity is done
        activity = deal.activity_ids.filtered(lambda a: a.deal_mail_template_id == self.template)
        composer_form = Form(
            self.env["mail.compose.message"].with_context(
                default_res_ids=deal.ids,
                default_model="crm.lead",
                default_subtype_xmlid="mail.mt_comment",
                default_template_id=self.template.id,
                force_email=True,
            )
        )
        self.assertIn("is now in production", composer_form.body)
        self.assertEqual(composer_form.partner_ids[:], self.customer)
        composer_form.body = "<p>Your chairs are in production, expect them next week.</p>"
        composer = composer_form.save()
        with self.mock_mail_gateway():
            composer._action_send_mail()
        mail = self._customer_mails(self.customer)
        self.assertEqual(len(mail), 1)
        self.assertIn("expect them next week", mail.body_html)
        self.assertFalse(activity.exists() and activity.active, "sending completes the activity")

    def test_propose_in_assignee_language(self):
        """The proposal speaks its assignee's language, not the mover's."""
        self.env["res.lang"]._activate_lang("ru_RU")
        self.env["ir.module.module"]._load_module_terms(["deal_stages"], ["ru_RU"], overwrite=True)
        self.user_sales_salesman.lang = "ru_RU"
        self.step_2.sudo().mail_mode = "propose"
        mover = self.deal.with_user(self.user_sales_manager).with_context(lang="en_US")
        mover.stage_id = self.stage_team1_2
        activity = self.deal.activity_ids.filtered(
            lambda a: a.deal_mail_template_id == self.template
        )
        self.assertEqual(activity.user_id, self.user_sales_salesman)
        self.assertEqual(activity.summary, "Отправить «Сделка: заказ в производстве»")
        self.assertIn("Откройте предпросмотр", activity.note)

    @users("user_sales_salesman")
    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_propose_send_now_in_one_click(self):
        self.step_2.sudo().mail_mode = "propose"
        deal = self.deal.with_env(self.env)
        deal.stage_id = self.stage_team1_2
        activity = deal.activity_ids.filtered(lambda a: a.deal_mail_template_id == self.template)
        with self.mock_mail_gateway():
            deal.activity_send_mail(self.template.id)  # the "Send Now" button
        self.assertEqual(len(self._customer_mails(self.customer)), 1)
        self.assertFalse(activity.exists() and activity.active)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_missing_email_no_message_note_and_activity(self):
        deal = self._create_deal(False, name="Anonymous order", contact_name="Zoidberg")
        self.assertFalse(deal.email_from)
        with self.mock_mail_gateway():
            self._move(deal, self.stage_team1_2)
        self.assertEqual(deal.stage_id, self.stage_team1_2, "the move is not blocked")
        self.assertFalse(self._new_mails)
        self.assertFalse(deal.message_ids.filtered(lambda m: m.message_type == "comment"))
        note = deal.message_ids.filtered(lambda m: "no customer email address" in m.body)
        self.assertEqual(len(note), 1)
        self.assertTrue(note.subtype_id.internal)
        activity = deal.activity_ids.filtered(lambda a: a.deal_mail_template_id == self.template)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.user_sales_salesman)
        self.assertIn("Add the customer's email", activity.summary)

        # fixed contact: the activity sends the message in one click
        deal.email_from = "zoidberg@example.com"
        with self.mock_mail_gateway():
            deal.with_user(self.user_sales_salesman).activity_send_mail(self.template.id)
        self.assertEqual(len(self._new_mails), 1)
        self.assertIn("zoidberg@example.com", self._new_mails.recipient_ids.mapped("email"))
        self.assertFalse(activity.exists() and activity.active)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_auto_to_walk_in_address(self):
        """A deal with only an address: the customer is emailed and becomes a contact."""
        deal = self._create_deal(False, name="Walk-in", email_from="Amy Wong <amy@example.com>")
        with self.mock_mail_gateway():
            self._move(deal, self.stage_team1_2)
        self.assertEqual(len(self._new_mails), 1)
        contact = self._new_mails.recipient_ids
        self.assertEqual(contact.email_normalized, "amy@example.com")
        self.assertEqual(deal.partner_id, contact, "linked to the deal, as Odoo does on a post")
        message = deal.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(message.partner_ids, contact)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_auto_sends_the_template_documents(self):
        terms = self.env["ir.attachment"].create(
            {"name": "terms.pdf", "raw": b"%PDF-1.4 terms", "res_model": "mail.template"}
        )
        self.template.attachment_ids = terms
        with self.mock_mail_gateway():
            self._move(self.deal, self.stage_team1_2)
        mail = self._customer_mails(self.customer)
        self.assertEqual(mail.attachment_ids.mapped("name"), ["terms.pdf"])
        message = self.deal.message_ids.filtered(lambda m: m.message_type == "comment")
        self.assertEqual(message.attachment_ids.mapped("raw"), [b"%PDF-1.4 terms"])

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_blacklisted_address_gets_nothing(self):
        self.env["mail.blacklist"].sudo()._add(self.customer.email)
        other = self._create_deal(False, name="Walk-in", email_from="Opted Out <out@example.com>")
        self.env["mail.blacklist"].sudo()._add("out@example.com")
        deals = self.deal | other
        with self.mock_mail_gateway():
            self._move(deals, self.stage_team1_2)
        self.assertEqual(deals.stage_id, self.stage_team1_2)
        self.assertFalse(self._new_mails)
        for deal in deals:
            self.assertFalse(deal.message_ids.filtered(lambda m: m.message_type == "comment"))
            self.assertTrue(deal.message_ids.filtered(lambda m: "opted out" in m.body))
            self.assertFalse(deal.activity_ids.filtered("deal_mail_template_id"))

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_send_template_helper_outside_a_step_entry(self):
        """The helper other features use (e.g. a refusal message) follows the same rules."""
        no_email = self._create_deal(False, name="No address")
        deals = (self.deal | no_email).with_user(self.user_sales_salesman)
        with self.mock_mail_gateway():
            deals._deal_send_template(self.template, "auto")
        self.assertEqual(len(self._customer_mails(self.customer)), 1)
        self.assertEqual(len(self._new_mails), 1)
        self.assertTrue(
            self.deal.message_ids.filtered(
                lambda m: m.subtype_id.internal and "sent to hubert@planet.example.com" in m.body
            )
        )
        self.assertTrue(no_email.message_ids.filtered(lambda m: "no customer email" in m.body))
        self.assertEqual(len(no_email.activity_ids.filtered("deal_mail_template_id")), 1)
        with self.mock_mail_gateway():
            deals._deal_send_template(self.template, "propose")
        self.assertFalse(self._new_mails)
        self.assertEqual(len(self.deal.activity_ids.filtered("deal_mail_template_id")), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_smtp_failure_never_blocks_the_move(self):
        with self.mock_mail_gateway():

            def _connect(*args, **kwargs):
                raise smtplib.SMTPServerDisconnected("Mail server is down")

            self.connect_mocked.side_effect = _connect
            self._move(self.deal, self.stage_team1_2)
            mail = self._customer_mails(self.customer)
            self.assertEqual(mail.state, "outgoing")
            # the mail queue runs later: the failure is recorded, the deal stays moved
            mail.send(raise_exception=False)
            self.assertEqual(mail.state, "exception")
            self.assertIn("Mail server is down", mail.failure_reason)
            self.assertEqual(self.deal.stage_id, self.stage_team1_2)
            notification = self.env["mail.notification"].search([("mail_mail_id", "=", mail.id)])
            self.assertEqual(notification.notification_status, "exception")
        # retry once the server is back (the "Retry" of the failed message)
        with self.mock_mail_gateway():
            mail.mark_outgoing()
            mail.send(raise_exception=False)
        self.assertEqual(mail.state, "sent")


@tagged("post_install", "-at_install", "deal_stages")
class TestDealFeedback(DealMessageCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_2.write({"mail_template_id": False, "is_feedback_step": True})
        cls.script.review_url = "https://reviews.example.com/our-company"
        cls.thank_you = cls.env.ref("deal_stages.mail_template_deal_thank_you")
        cls.review = cls.env.ref("deal_stages.mail_template_deal_review_request")

    def _enter_feedback_step(self):
        with self.mock_mail_gateway():
            self._move(self.deal, self.stage_team1_2)
        rating = self.env["rating.rating"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "=", self.deal.id)]
        )
        self.assertEqual(len(rating), 1)
        self.assertEqual(rating.partner_id, self.customer)
        mail = self._customer_mails(self.customer)
        self.assertEqual(len(mail), 1)
        self.assertIn(f"/rate/{rating.access_token}/5", mail.body_html)
        self.assertIn(f"/rate/{rating.access_token}/1", mail.body_html)
        return rating

    def _callbacks(self):
        return self.deal.activity_ids.filtered("deal_feedback_callback")

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_low_rating_team_leader_calls_back(self):
        rating = self._enter_feedback_step()
        with self.mock_mail_gateway():
            self.deal.sudo().rating_apply(1, token=rating.access_token, feedback="Late delivery")
        self.assertFalse(self._new_mails.filtered(lambda m: self.customer in m.recipient_ids))
        callback = self._callbacks()
        self.assertEqual(len(callback), 1)
        self.assertEqual(callback.user_id, self.sales_team_1.user_id)
        self.assertEqual(callback.summary, "Call back the unhappy customer")
        self.assertIn("Late delivery", callback.note)
        self.deal.invalidate_recordset()
        self.assertEqual(self.deal.rating_last_value, 1)
        self.assertEqual(self.deal.rating_count, 1)
        self.assertEqual(self.deal.rating_last_feedback, "Late delivery")
        self.assertFalse(self.deal.deal_review_requested)
        # the customer changes the comment: still one callback
        self.deal.sudo().rating_apply(3, token=rating.access_token, feedback="Late, but ok")
        self.assertEqual(len(self._callbacks()), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_neutral_rating_is_not_satisfied(self):
        rating = self._enter_feedback_step()
        self.deal.sudo().rating_apply(3, token=rating.access_token)
        self.assertEqual(len(self._callbacks()), 1)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_top_rating_asks_for_a_public_review_once(self):
        rating = self._enter_feedback_step()
        with self.mock_mail_gateway():
            self.deal.sudo().rating_apply(5, token=rating.access_token, feedback="Great!")
        review_mail = self._customer_mails(self.customer)
        self.assertEqual(len(review_mail), 1)
        self.assertEqual(review_mail.state, "outgoing")
        self.assertIn("https://reviews.example.com/our-company", review_mail.body_html)
        self.assertEqual(review_mail.author_id, self.user_sales_salesman.partner_id)
        self.assertFalse(self._callbacks())
        self.assertTrue(self.deal.deal_review_requested)
        self.deal.invalidate_recordset()
        self.assertEqual(self.deal.rating_last_value, 5)
        with self.mock_mail_gateway():
            self.deal.sudo().rating_apply(5, token=rating.access_token, feedback="Really great")
        self.assertFalse(self._new_mails, "the review is requested once")

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_top_rating_without_review_page(self):
        self.script.review_url = False
        rating = self._enter_feedback_step()
        with self.mock_mail_gateway():
            self.deal.sudo().rating_apply(5, token=rating.access_token)
        self.assertFalse(self._new_mails)
        self.assertTrue(self.deal.message_ids.filtered(lambda m: "no review page" in m.body))
