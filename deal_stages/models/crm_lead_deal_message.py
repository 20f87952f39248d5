"""Deal feature: the customer messages of the steps (sent or proposed)
and the feedback follow-up."""

import contextlib
import uuid
from collections import defaultdict

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.rating.models.rating_data import RATING_LIMIT_SATISFIED

from ..tools import DealOutcome
from .mail_activity_deal_notify import DEAL_ENGINE_ACTIVITIES

# what a template calls to link a deal's progress page (it needs the token)
PORTAL_LINK_NAMES = ("get_portal_url", "_portal_ensure_token", "access_token", "_get_share_url")


class CrmLeadDealMessage(models.AbstractModel):
    _name = "crm.lead.deal.message"
    _description = "Deal: Customer Messages"

    deal_review_requested = fields.Boolean(
        string="Review Requested",
        copy=False,
        readonly=True,
        help="Technical: the happy customer was already asked for a public review.",
    )

    def _deal_prefetch_partners(self, with_companies=False):
        """Read the deals' customers with the current user's partner, in one query.

        The entry work reads both: the customers' addresses (messages) and
        the user's name and address (activities, messages, the move's
        tracking), each of which would otherwise be a query of its own.

        :param with_companies: the deals' companies' partners too (a hand-off
            sends the company's VAT)
        """
        partners = self.partner_id | self.env.user.partner_id
        if with_companies:
            partners |= self.company_id.partner_id
        # as the user: a customer the user may not read is read (and refused)
        # by what needs it, which reports it on the deal
        with contextlib.suppress(AccessError):
            partners.fetch()

    def _deal_customer_email(self):
        """The address the deal's customer messages go to (False: none)."""
        self.ensure_one()
        return self.partner_id.email_normalized or self.email_normalized

    def _deal_send_step_messages(self, step_by_lead, outcome):
        """Send or propose the customer messages of the steps the deals entered.

        A feedback step without a message of its own sends the shipped rating
        request. Deals are grouped by message and mode: one send per group.

        :param step_by_lead: {lead id: step} the steps the deals entered
        :param outcome: a ``DealOutcome`` collecting what was done and skipped
        """
        # what each step sends: the scripts' structure (cached)
        config = self.env["crm.deal.script"]._deal_config()
        Template = self.env["mail.template"]
        feedback_template = None  # looked up only for a feedback step
        groups = {}
        for lead in self.browse(list(step_by_lead)):
            step = config.steps.get(step_by_lead[lead.id].id)
            if not step:
                continue
            template = Template.browse(step.mail_template_id)
            if not template and step.is_feedback_step:
                if feedback_template is None:
                    feedback_template = self.env.ref(
                        "deal_stages.mail_template_deal_thank_you", raise_if_not_found=False
                    )
                template = feedback_template
            if template:
                key = (template, step.mail_mode)
                groups[key] = groups.get(key, self.browse()) | lead
        for (template, mode), leads in groups.items():
            leads._deal_send_template(template, mode, outcome)

    def _deal_send_template(self, template, mode, outcome=None, author=None):
        """Send ``template`` to the customers of the deals ``self`` (reusable).

        - ``auto``: posted in the deals' chatter as a message to the customer,
          the email goes through the mail queue (never sent during the move,
          an SMTP failure leaves the mail failed and retryable);
        - ``propose``: an activity for the salesperson offering the message
          (preview and edit it in the composer, or send it in one click).

        Deals without a customer email get no message but an activity for the
        salesperson to fix the contact (with the message ready to send);
        blacklisted addresses get nothing.

        :param template: a ``mail.template`` on ``crm.lead``
        :param mode: ``auto`` or ``propose``
        :param outcome: a ``DealOutcome``; without it, the outcome is logged on
            each deal as an internal note
        :param author: ``res.partner`` the message is sent as (default: the
            current user)
        :return: the messages posted (``auto`` mode)
        """
        own_outcome = outcome is None
        if own_outcome:
            outcome = DealOutcome()
        messages = self.env["mail.message"]
        if not self or not template:
            return messages
        name = template.name
        no_email = self.filtered(lambda lead: not lead._deal_customer_email())
        # the deal's own address and its customer's both count (one query for all)
        emails = {
            lead.id: {lead.email_normalized, lead.partner_id.email_normalized} - {False}
            for lead in self - no_email
        }
        opted_out = self._deal_blacklisted(set().union(*emails.values()))
        blacklisted = (self - no_email).filtered(lambda lead: emails[lead.id] & opted_out)
        for lead in blacklisted:
            outcome.skipped(
                lead,
                self.env._(
                    "Customer message “%(message)s” not sent: %(email)s has opted out of "
                    "emails (blacklisted).",
                    message=name,
                    email=lead._deal_customer_email(),
                ),
            )
        ready = self - no_email - blacklisted
        if no_email:
            no_email._deal_propose_template(template, outcome, missing_email=True)
        if ready and mode == "propose":
            ready._deal_propose_template(template, outcome)
        elif ready:
            messages = ready._deal_post_template(template, author=author)
            for lead in ready:
                outcome.done(
                    lead,
                    self.env._(
                        "Customer message “%(message)s” sent to %(email)s.",
                        message=name,
                        email=lead._deal_customer_email(),
                    ),
                )
        if own_outcome:
            outcome.post_notes(self)
        return messages

    @api.model
    def _deal_blacklisted(self, emails):
        """The normalized addresses among ``emails`` that opted out: what the
        blacklist's search answers, in one plain statement (every move that
        sends a message asks)."""
        if not emails:
            return set()
        self.env["mail.blacklist"].flush_model(["email", "active"])
        rows = self.env.execute_query(
            SQL(
                "SELECT email FROM mail_blacklist WHERE active AND email = ANY(%s)",
                list(emails),
            )
        )
        return {email for (email,) in rows}

    def _deal_post_template(self, template, author=None):
        """Post ``template`` to the deals' customers, emails queued. In batch.

        What ``message_post`` of a rendered template does deal by deal, done
        once for all the deals: the template is rendered for all of them, each
        in its customer's language, then one ``create`` makes every chatter
        message (a message to the customer, which the salesperson reads in the
        deal's chatter) with its email, and one more their delivery
        notifications (the chatter's envelope: sent, failed, retry). The emails
        wait in the mail queue: nothing is sent during the move, an SMTP
        failure leaves the email failed and retryable.

        :return: the messages posted
        """
        if not self:
            return self.env["mail.message"]
        rendered = self._deal_render_template(template)
        layout = template.email_layout_xmlid
        langs = template._render_lang(self.ids) if layout else {}
        author_id, default_from = self._message_compute_author(author and author.id)
        comment_subtype_id = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment")
        companies = self._mail_get_companies(default=self.env.company)
        alias_domains = self._mail_get_alias_domains(default_company=self.env.company)
        emails_from = {
            lead.id: rendered[lead.id].get("email_from") or default_from for lead in self
        }
        reply_tos = self._deal_reply_tos(emails_from, author_id)
        documents = self._deal_template_documents(rendered)
        Message = self.env["mail.message"]
        vals_list = []
        for lead in self:
            values = rendered[lead.id]
            partner_ids = list(dict.fromkeys(values.get("partner_ids") or ()))
            body = values.get("body_html") or ""
            body_html = lead._deal_template_layout(template, body, langs, companies[lead.id])
            message_id = Message._get_message_id({"model": self._name, "res_id": lead.id})
            attachment_ids = documents[lead.id]
            vals = {
                # the chatter message
                "model": self._name,
                "res_id": lead.id,
                "message_type": "comment",
                "subtype_id": comment_subtype_id,
                "author_id": author_id,
                "email_from": emails_from[lead.id],
                "reply_to": values.get("reply_to") or reply_tos[lead.id],
                "subject": values.get("subject") or lead.name,
                "body": body,
                "partner_ids": [(6, 0, partner_ids)],
                "message_id": message_id,
                "record_company_id": companies[lead.id].id,
                "record_alias_domain_id": alias_domains[lead.id].id,
                # its email: kept in the chatter once sent (is_notification)
                "body_html": body_html,
                "recipient_ids": [(6, 0, partner_ids)],
                "is_notification": True,
                "auto_delete": values.get("auto_delete", True),
                "mail_server_id": values.get("mail_server_id") or False,
                "scheduled_date": values.get("scheduled_date") or False,
                "references": message_id,
                "headers": repr(lead._notify_by_email_get_headers()),
            }
            if attachment_ids:
                vals["attachment_ids"] = [(6, 0, attachment_ids)]
            vals_list.append(vals)
        # mail.mail is technical (sudo as in message_post's notification); the
        # deals are the caller's, who just moved them
        mails = self.env["mail.mail"].sudo().create(vals_list)
        self._deal_notify_mails(mails, author_id)
        messages = Message.concat(*(mail.mail_message_id for mail in mails)).sudo(False)
        # crm links a deal without customer to the contact made from its address
        for lead, message, values in zip(self, messages, vals_list, strict=True):
            if not lead.partner_id:
                lead._message_post_after_hook(message, values)
        return messages

    def _deal_template_layout(self, template, body, langs, company):
        """The email's body: ``body`` in the template's layout, in the
        customer's language (``langs``: {lead id: lang}), if it has one."""
        layout = template.email_layout_xmlid
        if not layout:
            return body
        lang = langs.get(self.id) or self.env.lang
        return template.with_context(lang=lang)._render_encapsulate(
            layout, body, add_context={"company": company},
            context_record=self.with_context(lang=lang),
        )  # fmt: skip

    def _deal_reply_tos(self, emails_from, author_id):
        """{lead id: reply-to}: as message_post, the sales team's alias if any
        (crm), computed once per sender.

        :param emails_from: {lead id: sender address}
        """
        by_sender, reply_tos = defaultdict(list), {}
        for lead_id, email_from in emails_from.items():
            by_sender[email_from].append(lead_id)
        for email_from, lead_ids in by_sender.items():
            reply_tos.update(
                self.browse(lead_ids)._notify_get_reply_to(default=email_from, author_id=author_id)
            )
        return reply_tos

    @api.model
    def _deal_notify_mails(self, mails, author_id):
        """The delivery notifications of ``mails`` (the chatter's envelope:
        sent, failed, retry), in one create, as message_post makes them."""
        self.env["mail.notification"].sudo().create(
            [
                {
                    "mail_message_id": mail.mail_message_id.id,
                    "mail_mail_id": mail.id,
                    "res_partner_id": partner.id,
                    "author_id": author_id,
                    "notification_type": "email",
                    "notification_status": "ready",
                    "is_read": True,
                }
                for mail in mails
                for partner in mail.recipient_ids
            ]
        )

    def _deal_render_template(self, template):
        """{lead id: values} of ``template`` rendered for the deals ``self``.

        Each deal in its customer's language, with ``partner_ids`` (the
        recipients) and the template's documents and reports if it has any.
        """
        render_fields = [
            "auto_delete", "body_html", "email_from", "mail_server_id", "reply_to",
            "scheduled_date", "subject",
        ]  # fmt: skip
        # its documents and reports, if it has any (cached)
        has_documents, has_reports = template._deal_has_documents()
        if has_documents:
            render_fields.append("attachment_ids")
        if has_reports:
            render_fields.append("report_template_ids")
        # the default recipient is the deal's customer, whose address the
        # engine checked (missing, blacklisted); other templates say theirs
        own_recipients = template.use_default_to
        if not own_recipients:
            render_fields += ["email_cc", "email_to", "partner_to"]
        self._deal_ensure_tokens(template)
        # addresses without a contact become contacts, as when posting to them
        rendered = template._generate_template(
            self.ids, render_fields, find_or_create_partners=True
        )
        if own_recipients:
            walk_in = self.filtered(lambda lead: not lead.partner_id.email_normalized)
            for lead in self - walk_in:
                rendered[lead.id]["partner_ids"] = lead.partner_id.ids
            if walk_in:
                for lead_id, values in template._generate_template(
                    walk_in.ids, ("email_to", "partner_to"), find_or_create_partners=True
                ).items():
                    rendered[lead_id]["partner_ids"] = values.get("partner_ids") or []
        return rendered

    def _deal_ensure_tokens(self, template):
        """Give the deals their progress page token before ``template`` links it.

        Rendering would write each deal's token on its own (a write per deal,
        with all that a deal's write triggers); one statement does it here.
        """
        body = template.body_html or ""
        if not any(name in body for name in PORTAL_LINK_NAMES):
            return
        missing = self.filtered(lambda lead: not lead.access_token)
        if missing:
            # a technical field, unknown to automation rules and tracking
            missing.sudo()._write_multi([{"access_token": str(uuid.uuid4())} for _lead in missing])
            missing.invalidate_recordset(["access_token"])

    def _deal_template_documents(self, rendered):
        """{lead id: attachment ids} for the rendered template's documents.

        Reports rendered for the deals are attached to them, in one create.
        """
        report_values, report_owner = [], []
        for lead in self:
            for name, datas in rendered[lead.id].get("attachments") or ():
                report_values.append(
                    {
                        "name": name,
                        "datas": datas,
                        "type": "binary",
                        "res_model": self._name,
                        "res_id": lead.id,
                    }
                )
                report_owner.append(lead.id)
        documents = {
            lead_id: list(values.get("attachment_ids") or [])
            for lead_id, values in rendered.items()
        }
        for lead_id, attachment in zip(
            report_owner, self.env["ir.attachment"].create(report_values), strict=True
        ):
            documents[lead_id].append(attachment.id)
        return documents

    def _deal_propose_template(self, template, outcome, missing_email=False):
        """Activity "Send <template>" for the salesperson of each deal.

        The activity carries the template: it offers to preview (and edit) the
        message in the composer or to send it in one click. Not created twice
        while one is open for the same message.
        """
        Activity = self.env["mail.activity"]
        open_leads = set(
            Activity.search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "in", self.ids),
                    ("deal_mail_template_id", "=", template.id),
                ]
            ).mapped("res_id")
        )
        email_type = self.env.ref("mail.mail_activity_data_email", raise_if_not_found=False)
        todo_type = self.env.ref("mail.mail_activity_data_todo")
        model_id = self.env["ir.model"]._get_id(self._name)
        today = fields.Date.context_today(self)
        # the activity speaks its assignee's language, as the steps' own
        # activities do (not the language of whoever moved the deals)
        texts = {}
        vals_list = []
        for lead in self:
            user = lead.user_id or self.env.user
            if user._is_public() or user._is_superuser():
                # the cron or the public rating page: someone who will see it
                user = lead.team_id.user_id or lead.deal_script_id.sla_escalation_user_id or user
            lang = user.lang or self.env.lang
            if lang not in texts:
                texts[lang] = self.with_context(lang=lang)._deal_proposal_texts(
                    template.with_context(lang=lang), missing_email
                )
            summary, note = texts[lang]
            if missing_email:
                outcome.skipped(
                    lead,
                    self.env._(
                        "Customer message “%(message)s” not sent: the deal has no customer "
                        "email address. %(user)s is asked to add it and send the message.",
                        message=template.name,
                        user=user.name,
                    ),
                )
            if lead.id in open_leads:
                if not missing_email:
                    outcome.skipped(
                        lead,
                        self.env._(
                            "Customer message “%(message)s”: already proposed, still open.",
                            message=template.name,
                        ),
                    )
                continue
            if not missing_email:
                outcome.done(
                    lead,
                    self.env._(
                        "Customer message “%(message)s” proposed to %(user)s.",
                        message=template.name,
                        user=user.name,
                    ),
                )
            vals_list.append(
                {
                    "res_model_id": model_id,
                    "res_id": lead.id,
                    "activity_type_id": (email_type or todo_type).id,
                    "summary": summary,
                    "note": note,
                    "date_deadline": today,
                    "user_id": user.id,
                    "automated": True,
                    "deal_mail_template_id": template.id,
                    "deal_step_id": lead.deal_step_id.id,
                }
            )
        return Activity._deal_engine_create(vals_list)

    @api.model
    def _deal_proposal_texts(self, template, missing_email):
        """(summary, note) of the activity proposing to send ``template``."""
        if missing_email:
            summary = self.env._(
                "Add the customer's email, then send “%(message)s”", message=template.name
            )
            note = Markup("<p>%s</p>") % self.env._(
                "The customer message “%(message)s” could not be sent: the deal has no "
                "customer email address. Add it to the customer, then send the message "
                "from this activity.",
                message=template.name,
            )
        else:
            summary = self.env._("Send “%(message)s”", message=template.name)
            note = Markup("<p>%s</p>") % self.env._(
                "Preview the message to edit it before sending, or send it now."
            )
        return summary, note

    def _deal_rating_followup(self, rating):
        """Act on the customer's rating: call back the unhappy, ask the happy for a review.

        Runs from the public rating page (as superuser, after the rating token
        was checked), so what it creates is explicitly attributed.
        """
        self.ensure_one()
        if rating.rating < RATING_LIMIT_SATISFIED:
            self._deal_schedule_callback(rating)
            return
        review_template = self.env.ref(
            "deal_stages.mail_template_deal_review_request", raise_if_not_found=False
        )
        if self.deal_review_requested or not review_template:
            return
        if not self.deal_script_id.review_url:
            self._message_log(
                body=self.env._(
                    "The customer is happy, but the script %(script)s has no review page "
                    "address: no review was requested.",
                    script=self.deal_script_id.display_name,
                )
            )
            return
        self.deal_review_requested = True
        self._deal_send_template(
            review_template, "auto", author=self.user_id.partner_id or self.company_id.partner_id
        )

    def _deal_schedule_callback(self, rating):
        """Activity "Call back the unhappy customer" for the team leader (once open)."""
        callback_type = self.env.ref("mail.mail_activity_data_call", raise_if_not_found=False)
        if self.env["mail.activity"].search_count(
            [
                ("res_model", "=", self._name),
                ("res_id", "=", self.id),
                ("deal_feedback_callback", "=", True),
            ],
            limit=1,
        ):
            return
        user = self.team_id.user_id or self.user_id or self.env.ref("base.user_admin")
        rating_label = dict(rating._fields["rating_text"]._description_selection(self.env)).get(
            rating.rating_text
        )
        note = Markup("<p>%s</p>") % self.env._(
            "The customer rated the order “%(rating)s”.", rating=rating_label
        )
        if rating.feedback:
            note += Markup("<blockquote>%s</blockquote>") % rating.feedback
        # the engine's activity: its assignee is told once with the others
        self.with_context(
            mail_activity_quick_update=True, deal_engine_activities=DEAL_ENGINE_ACTIVITIES
        ).activity_schedule(
            activity_type_id=(callback_type or self.env.ref("mail.mail_activity_data_todo")).id,
            summary=self.env._("Call back the unhappy customer"),
            note=note,
            user_id=user.id,
            deal_feedback_callback=True,
        ).with_env(self.env)._deal_notify_later()
