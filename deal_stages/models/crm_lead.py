from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.fields import Domain
from odoo.tools import SQL

from odoo.addons.rating.models.rating_data import RATING_LIMIT_SATISFIED

from .base_automation import DealEngineCollector, DealMove
from .crm_deal_stage_log import DealReport

# writes of these fields may start, change or end a deal's stay in a step
DEAL_TRACKED_FIELDS = {"stage_id", "deal_script_id", "type", "team_id", "user_id"}
# without a step deadline (SLA), a deal standing longer than this in a step is at risk
DEAL_DEFAULT_RISK_DAYS = 14
# bus notification telling the open deal boards to reload
DEAL_BOARD_NOTIFICATION = "deal_stages/board_changed"

SLA_STATES = [
    ("none", "No deadline"),
    ("ok", "On time"),
    ("warning", "At risk"),
    ("breached", "Breached"),
]
# rungs of the escalation ladder, persisted per stay in ``deal_sla_level`` so
# that each fires once however often (or late) the cron runs
SLA_LEVEL_NONE, SLA_LEVEL_WARNING, SLA_LEVEL_BREACH, SLA_LEVEL_ESCALATION = range(4)
# set by the engine only: a user may not hide a breach by writing them
SLA_ENGINE_FIELDS = {
    "deal_sla_deadline",
    "deal_sla_state",
    "deal_sla_warning_date",
    "deal_sla_escalation_date",
    "deal_sla_level",
    "deal_sla_next_check",
}
SLA_CLEARED = {
    "deal_sla_deadline": False,
    "deal_sla_state": "none",
    "deal_sla_warning_date": False,
    "deal_sla_escalation_date": False,
    "deal_sla_level": SLA_LEVEL_NONE,
    "deal_sla_next_check": False,
}
SLA_BATCH_SIZE = 200


class CrmLead(models.Model):
    _name = "crm.lead"
    # portal: the customer progress page; rating: the feedback request
    _inherit = ["crm.lead", "portal.mixin", "rating.mixin"]

    deal_script_id = fields.Many2one(
        "crm.deal.script",
        string="Deal Script",
        compute="_compute_deal_script_id",
        store=True,
        readonly=False,
        index="btree_not_null",
        tracking=True,
        domain="[('is_template', '=', False), ('company_id', 'in', [company_id or current_company_id, False])]",
        help="The process this deal follows. New opportunities take their sales "
        "team's script.",
    )
    deal_step_id = fields.Many2one(
        "crm.deal.script.step",
        string="Deal Step",
        compute="_compute_deal_step_id",
        store=True,
        index="btree_not_null",
        help="The script step of the deal's current stage.",
    )
    deal_progress = fields.Integer(
        string="Progress",
        compute="_compute_deal_progress",
        store=True,
        aggregator="avg",
        help="Position of the current step in the script, in percent.",
    )
    deal_log_ids = fields.One2many("crm.deal.stage.log", "lead_id", string="Stage History")
    deal_applied_activity_ids = fields.Many2many(
        "crm.deal.script.activity",
        "crm_lead_deal_applied_activity_rel",
        "lead_id",
        "script_activity_id",
        string="Script Activities Created",
        copy=False,
        readonly=True,
        help="Technical: script activity templates already applied to this deal, "
        "so that 'once' templates are never applied twice.",
    )

    # ------------------------------------------------------------
    # COMPUTES
    # ------------------------------------------------------------

    @api.depends("team_id", "type")
    def _compute_deal_script_id(self):
        script_by_team = None
        for lead in self:
            if lead.type != "opportunity":
                lead.deal_script_id = False
            elif not lead.deal_script_id and lead.team_id:
                if script_by_team is None:
                    script_by_team = self.env["crm.deal.script"]._script_id_by_team()
                lead.deal_script_id = script_by_team.get(lead.team_id.id, False)

    @api.depends("deal_script_id")
    def _compute_stage_id(self):
        # a new deal starts at its script's first step, not at the first
        # stage of the pipeline
        for lead in self.filtered(lambda lead: not lead.stage_id and lead.deal_script_id):
            first_step = lead.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))[:1]
            lead.stage_id = first_step.stage_id
        return super()._compute_stage_id()

    @api.depends("stage_id", "deal_script_id", "deal_script_id.step_ids.stage_id")
    def _compute_deal_step_id(self):
        step_by_key = {
            (step.script_id, step.stage_id): step for step in self.deal_script_id.step_ids
        }
        for lead in self:
            lead.deal_step_id = step_by_key.get((lead.deal_script_id, lead.stage_id), False)

    @api.depends("deal_step_id", "deal_script_id.step_ids.sequence")
    def _compute_deal_progress(self):
        for lead in self:
            steps = lead.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
            if lead.deal_step_id and steps:
                position = list(steps).index(lead.deal_step_id) + 1
                lead.deal_progress = round(position * 100 / len(steps))
            else:
                lead.deal_progress = 0

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        self._deal_sla_check_writable(*vals_list)
        # rules fired while the deals are created only collect them: the engine
        # runs once their stays are logged (see base.automation._process)
        collector = DealEngineCollector()
        leads = super(CrmLead, self.with_context(deal_engine_collector=collector)).create(
            vals_list
        )
        deals = leads.filtered("deal_script_id")
        if deals:
            no_origin = (self.env["crm.stage"], self.env["crm.deal.script.step"])
            deals._deal_open_stays(
                dict.fromkeys(deals.ids, no_origin), date_in=fields.Datetime.now()
            )
            deals._deal_board_notify()
        collector.run(leads)
        return leads.with_env(self.env)

    def write(self, vals):
        self._deal_sla_check_writable(vals)
        if not (self and DEAL_TRACKED_FIELDS.intersection(vals)):
            result = super().write(vals)
            self._deal_board_notify()
            return result
        if "deal_script_id" in vals:
            self._deal_check_script_change(vals["deal_script_id"])
        before = {
            lead.id: (lead.stage_id, lead.deal_script_id, lead.deal_step_id) for lead in self
        }
        collector = DealEngineCollector()
        leads = self.with_context(deal_engine_collector=collector)
        result = super(CrmLead, leads).write(vals)
        leads._deal_log_transitions(before, script_assigned_now="type" in vals)
        collector.run(self)
        self._deal_board_notify()
        return result

    # ------------------------------------------------------------
    # STAGE HISTORY
    # ------------------------------------------------------------

    def _deal_check_script_change(self, script_id):
        """A deal's script may change only before it went past its first step.

        Later, changing the process would rewrite its history: only members of
        the supervisor group may do that.
        """
        changing = self.filtered(lambda lead: lead.deal_script_id.id != (script_id or False))
        if not changing or self.env.user.has_group("deal_stages.group_deal_supervisor"):
            return
        first_step_by_script = {
            script: script.step_ids.sorted(lambda s: (s.sequence, s.id))[:1]
            for script in changing.deal_script_id
        }
        groups = self.env["crm.deal.stage.log"]._read_group(
            [("lead_id", "in", changing.ids), ("step_id", "!=", False)],
            ["lead_id", "step_id"],
        )
        for lead, step in groups:
            if step.script_id == lead.deal_script_id and step != first_step_by_script.get(
                lead.deal_script_id
            ):
                raise UserError(
                    self.env._(
                        "The deal %(deal)s has already gone past the first step of its "
                        "script %(script)s: only a supervisor can change its script.",
                        deal=lead.display_name,
                        script=lead.deal_script_id.display_name,
                    )
                )

    def _deal_log_transitions(self, before, script_assigned_now=False):
        """Close and open stays for the deals whose stage or script changed.

        :param before: {lead id: (stage, script, step)} read before the write
        :param script_assigned_now: the deal just became an opportunity, so a
            newly assigned script starts now rather than at the last stage move
        """
        now = fields.Datetime.now()
        closing, opening, assigned = self.browse(), {}, self.browse()
        for lead in self:
            old_stage, old_script, old_step = before[lead.id]
            if old_script and (lead.deal_script_id != old_script or lead.stage_id != old_stage):
                closing |= lead
            if lead.deal_script_id and lead.deal_script_id == old_script:
                if lead.stage_id != old_stage:
                    opening[lead.id] = (old_stage, old_step)
            elif lead.deal_script_id:
                assigned |= lead
        if closing:
            closing._deal_close_stays(now)
        if opening:
            self.browse(opening)._deal_open_stays(opening, date_in=now)
        if assigned:
            # a deal given its first script where it already stands: its stay
            # started at its last stage move (now for a fresh conversion, a
            # stage move or a change of script)
            moved = assigned.filtered(
                lambda lead: script_assigned_now
                or lead.stage_id != before[lead.id][0]
                or before[lead.id][1]
            )
            origins = {lead.id: (before[lead.id][0], self.env["crm.deal.script.step"]) for lead in assigned}
            if moved:
                moved._deal_open_stays(origins, date_in=now)
            if assigned - moved:
                (assigned - moved)._deal_open_stays(origins, date_in=None)

    def _deal_close_stays(self, date_out):
        # the history is written by the system: users only read it; date_in
        # is fetched with the search (the duration needs it: no second query)
        stays = self.env["crm.deal.stage.log"].sudo().search_fetch(
            [("lead_id", "in", self.ids), ("date_out", "=", False)], ["date_in"]
        )
        stays.write({"date_out": date_out})
        # written now, before the next stays are inserted: the database allows
        # one open stay per deal
        stays.flush_recordset(["date_out", "duration_hours"])
        # leaving a step ends its deadline: no escalation for a step left in time
        self._deal_sla_write(dict.fromkeys(self.ids, SLA_CLEARED))

    def _deal_move_context(self, cause, note=False, skip_gate=False):
        """``self`` with the context of a trusted move (see ``DealMove``)."""
        return self.with_context(deal_move=DealMove(cause, note=note, skip_gate=skip_gate))

    def _deal_current_move(self):
        move = self.env.context.get("deal_move")
        return move if isinstance(move, DealMove) else DealMove("move")

    def _deal_open_stays(self, origins, date_in=None):
        """Create the stage log rows of the deals ``self`` entering their stage.

        :param origins: {lead id: (from stage, from step)}
        :param date_in: entry date; None means the deal's last stage move
        """
        move = self._deal_current_move()
        # the history is written by the system: users only read it
        self.env["crm.deal.stage.log"].sudo().create(
            [
                {
                    "lead_id": lead.id,
                    "script_id": lead.deal_script_id.id,
                    "step_id": lead.deal_step_id.id,
                    "stage_id": lead.stage_id.id,
                    "from_stage_id": origins[lead.id][0].id,
                    "from_step_id": origins[lead.id][1].id,
                    "user_id": self.env.uid,
                    "salesperson_id": lead.user_id.id,
                    "team_id": lead.team_id.id,
                    "company_id": lead.company_id.id,
                    "date_in": date_in or lead.date_last_stage_update or fields.Datetime.now(),
                    "cause": move.cause,
                    "note": move.note,
                }
                for lead in self
            ]
        )

    # ------------------------------------------------------------
    # ENGINE ENTRY POINTS (called by the shipped automation rules)
    # ------------------------------------------------------------

    def _deal_collected(self, method_name):
        """Hand the records to the running automation's batch, if any.

        See ``base.automation._process``: automation rules run their server
        actions record by record, the engine then runs once on all of them.
        """
        collector = self.env.context.get("deal_engine_collector")
        if collector is None:
            return False
        collector.add(method_name, self.ids)
        return True

    def _deal_run_entry_automation(self):
        """Apply the entry automation of the steps the deals ``self`` entered.

        Idempotent: it processes the stays not processed yet, so running it
        twice, or from two rules, does the work once.
        """
        if not self or self._deal_collected("_deal_run_entry_automation"):
            return
        # the history is system-owned (read-only for users); the work on the
        # deals is done with the caller's rights
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "in", self.ids), ("entry_done", "=", False)], order="date_in, id"
        )._process_entries(self.env)

    # ------------------------------------------------------------
    # ENGINE: ACTIVITIES
    # ------------------------------------------------------------

    def _deal_cancel_left_activities(self):
        """Cancel the open activities that steps the deals left created.

        Only the script's own activities of steps that ask for it go; manual
        activities and those of the current step stay.

        :return: the script's open activities of the deals that remain, for
            ``_deal_schedule_activities`` (one search serves both)
        """
        activities = self._deal_script_open_activities()
        step_by_lead = {lead.id: lead.deal_step_id for lead in self}
        left = activities.filtered(
            lambda act: act.deal_step_id != step_by_lead[act.res_id]
            and act.deal_step_id.cancel_activities_on_exit
        )
        left.unlink()
        return activities - left

    def _deal_script_open_activities(self):
        """The open activities created by the scripts on the deals ``self``."""
        return self.env["mail.activity"].search_fetch(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                ("deal_script_activity_id", "!=", False),
                ("deal_step_id", "!=", False),
            ],
            ["res_id", "deal_script_activity_id", "deal_step_id"],
        )

    def _deal_schedule_activities(self, step_by_lead, trigger, report, open_activities=None):
        """Create the activities the steps' templates of ``trigger`` ask for.

        One ``create`` for all deals. Re-entry policy: ``once`` templates are
        never applied twice to a deal (done, cancelled or open); ``always``
        ones are applied again unless the previous activity is still open.

        :param step_by_lead: {lead id: step} the step whose templates apply
        :param trigger: ``enter``, ``lost``, ``sla`` or ``change``
        :param report: a ``DealReport`` collecting what was done and skipped
        :param open_activities: the script's open activities of these deals,
            when the caller has them already (saves a search)
        """
        steps = self.env["crm.deal.script.step"].concat(*step_by_lead.values())
        # one query for the templates and the fields used below
        templates = self.env["crm.deal.script.activity"].search_fetch(
            [("step_id", "in", steps.ids), ("trigger", "=", trigger)],
            [
                "step_id", "sequence", "activity_type_id", "summary", "note",
                "deadline_days", "deadline_working_days", "assign_to", "user_id", "reentry",
            ],
            order="sequence, id",
        )  # fmt: skip
        if not templates:
            return self.env["mail.activity"]
        templates_by_step = templates.grouped("step_id")
        leads = self.browse(step_by_lead)
        applied = leads._deal_applied_template_pairs(templates)
        if open_activities is None:
            open_activities = leads._deal_script_open_activities()
        open_pairs = {(act.res_id, act.deal_script_activity_id.id) for act in open_activities}
        # the assignee's language matters only where there is a choice
        multi_lang = len(self.env["res.lang"].get_installed()) > 1
        today = fields.Date.context_today(self)
        deadlines = {}
        model_id = self.env["ir.model"]._get_id("crm.lead")
        vals_list, new_pairs = [], []
        for lead in leads:
            step_templates = templates_by_step.get(step_by_lead[lead.id], templates.browse())
            for template in step_templates:
                key = (lead.id, template.id)
                if template.reentry == "once" and key in applied:
                    report.skipped(
                        lead,
                        self.env._("“%(activity)s”: created once already.", activity=template.display_name),
                    )
                    continue
                if key in open_pairs:
                    report.skipped(
                        lead,
                        self.env._("“%(activity)s”: still open.", activity=template.display_name),
                    )
                    continue
                user, warning = lead._deal_activity_assignee(template)
                template_lang = (
                    template.with_context(lang=user.lang or self.env.lang)
                    if multi_lang
                    else template
                )
                deadline = lead._deal_activity_deadline(template, user, today, deadlines)
                vals_list.append(
                    {
                        "res_model_id": model_id,
                        "res_id": lead.id,
                        "activity_type_id": template.activity_type_id.id,
                        "summary": template_lang.summary or template.activity_type_id.summary,
                        "note": template_lang.note or template.activity_type_id.default_note,
                        "date_deadline": deadline,
                        "user_id": user.id,
                        "automated": True,
                        "deal_script_activity_id": template.id,
                        "deal_step_id": template.step_id.id,
                    }
                )
                new_pairs.append(key)
                report.done(
                    lead,
                    self.env._(
                        "Activity “%(activity)s” for %(user)s, due %(date)s.",
                        activity=template.display_name,
                        user=user.name,
                        date=fields.Date.to_string(deadline),
                    )
                    + (f" {warning}" if warning else ""),
                )
        activities = self.env["mail.activity"].create(vals_list)
        self._deal_mark_templates_applied(new_pairs)
        return activities

    def _deal_applied_template_pairs(self, templates):
        """{(lead id, template id)} of the templates already applied to ``self``."""
        self.flush_model(["deal_applied_activity_ids"])
        rows = self.env.execute_query(
            SQL(
                "SELECT lead_id, script_activity_id FROM crm_lead_deal_applied_activity_rel"
                " WHERE lead_id = ANY(%s) AND script_activity_id = ANY(%s)",
                self.ids,
                templates.ids,
            )
        )
        return set(rows)

    def _deal_mark_templates_applied(self, pairs):
        # one INSERT for the whole batch; the ORM would write deal by deal
        if not pairs:
            return
        lead_ids, template_ids = zip(*pairs, strict=True)
        self.env.cr.execute(
            SQL(
                "INSERT INTO crm_lead_deal_applied_activity_rel (lead_id, script_activity_id)"
                " SELECT * FROM unnest(%s::int[], %s::int[]) ON CONFLICT DO NOTHING",
                list(lead_ids),
                list(template_ids),
            )
        )
        self.browse(lead_ids).invalidate_recordset(["deal_applied_activity_ids"])

    def _deal_activity_assignee(self, template):
        """(user, warning): who gets the activity of ``template`` on this deal."""
        self.ensure_one()
        if template.assign_to == "user":
            return template.user_id, None
        salesperson = self.user_id or self.env.user
        if template.assign_to == "team_leader":
            if self.team_id.user_id:
                return self.team_id.user_id, None
            return salesperson, self.env._(
                "The sales team has no leader: assigned to the salesperson."
            )
        return salesperson, None

    def _deal_activity_deadline(self, template, user, today, cache):
        """Deadline of ``template``'s activity, in calendar or working days.

        Working days follow the assignee's working schedule, else the deal's
        company's. ``cache`` keeps one computation per schedule and delay.
        """
        days = template.deadline_days
        if not days:
            return today
        calendar = template.deadline_working_days and (
            user.resource_calendar_id or (self.company_id or self.env.company).resource_calendar_id
        )
        if not calendar:
            return today + timedelta(days=days)
        key = (calendar.id, days, today)
        if key not in cache:
            tz = pytz.timezone(calendar.tz or "UTC")
            # count from the next day: "3 working days" from Friday is Wednesday
            start = tz.localize(datetime.combine(today + timedelta(days=1), time.min))
            end = calendar.plan_days(days, start, compute_leaves=True)
            cache[key] = end.astimezone(tz).date() if end else today + timedelta(days=days)
        return cache[key]

    # ------------------------------------------------------------
    # CUSTOMER COMMUNICATION: step messages, feedback, progress page
    # ------------------------------------------------------------

    deal_tracking_ref = fields.Char(
        string="Tracking Reference",
        tracking=True,
        copy=False,
        help="The carrier's tracking number of the shipment, sent to the customer "
        "in the shipment notice and shown on the customer progress page.",
    )
    deal_carrier = fields.Char(
        string="Carrier",
        tracking=True,
        copy=False,
        help="Who delivers the order, sent to the customer with the tracking reference.",
    )
    deal_portal_attachment_ids = fields.Many2many(
        "ir.attachment",
        "crm_lead_deal_portal_attachment_rel",
        "lead_id",
        "attachment_id",
        string="Shared Documents",
        copy=False,
        domain="[('res_model', '=', 'crm.lead'), ('res_id', '=', id)]",
        help="Documents of this deal (attached in its chatter) the customer may "
        "download from the customer progress page.",
    )
    deal_review_requested = fields.Boolean(
        string="Review Requested",
        copy=False,
        readonly=True,
        help="Technical: the happy customer was already asked for a public review.",
    )

    def _compute_access_url(self):
        for lead in self:
            lead.access_url = f"/my/deals/{lead.id}"

    @api.constrains("deal_portal_attachment_ids")
    def _check_deal_portal_attachments(self):
        for lead in self:
            foreign = lead.deal_portal_attachment_ids.filtered(
                lambda att, lead=lead: att.res_model != "crm.lead" or att.res_id != lead.id
            )
            if foreign:
                raise ValidationError(
                    self.env._(
                        "Only documents attached to the deal %(deal)s can be shared with "
                        "its customer (%(document)s is not).",
                        deal=lead.display_name,
                        document=foreign[0].name,
                    )
                )

    @api.model
    def _get_thread_with_access(self, thread_id, *, hash=None, pid=None, token=None, **kwargs):
        # the deal's token opens the customer progress page only, never the
        # deal's chatter (portal.mixin would otherwise grant it)
        return super()._get_thread_with_access(thread_id, **kwargs)

    def action_deal_preview_portal(self):
        """Open the customer progress page as the customer sees it."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_url",
            "target": "new",
            "url": self.get_portal_url(),
        }

    def _deal_customer_email(self):
        """The address the deal's customer messages go to (False: none)."""
        self.ensure_one()
        return self.partner_id.email_normalized or self.email_normalized

    def _deal_send_step_messages(self, step_by_lead, report):
        """Send or propose the customer messages of the steps the deals entered.

        A feedback step without a message of its own sends the shipped rating
        request. Deals are grouped by message and mode: one send per group.

        :param step_by_lead: {lead id: step} the steps the deals entered
        :param report: a ``DealReport`` collecting what was done and skipped
        """
        feedback_template = self.env.ref(
            "deal_stages.mail_template_deal_thank_you", raise_if_not_found=False
        )
        groups = {}
        for lead in self.browse(list(step_by_lead)):
            step = step_by_lead[lead.id]
            template = step.mail_template_id or (step.is_feedback_step and feedback_template)
            if template:
                key = (template, step.mail_mode or "auto")
                groups[key] = groups.get(key, self.browse()) | lead
        for (template, mode), leads in groups.items():
            leads._deal_send_template(template, mode, report)

    def _deal_send_template(self, template, mode, report=None, author=None):
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
        :param report: a ``DealReport``; without it, the outcome is logged on
            each deal as an internal note
        :param author: ``res.partner`` the message is sent as (default: the
            current user)
        :return: the messages posted (``auto`` mode)
        """
        own_report = report is None
        if own_report:
            report = DealReport()
        messages = self.env["mail.message"]
        if not self or not template:
            return messages
        name = template.name
        no_email = self.filtered(lambda lead: not lead._deal_customer_email())
        # the deal's own address and its customer's both count
        blacklisted = (self - no_email).filtered(
            lambda lead: lead.is_blacklisted or lead.partner_id.is_blacklisted
        )
        for lead in blacklisted:
            report.skipped(
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
            no_email._deal_propose_template(template, report, missing_email=True)
        if ready and mode == "propose":
            ready._deal_propose_template(template, report)
        elif ready:
            messages = ready._deal_post_template(template, author=author)
            for lead in ready:
                report.done(
                    lead,
                    self.env._(
                        "Customer message “%(message)s” sent to %(email)s.",
                        message=name,
                        email=lead._deal_customer_email(),
                    ),
                )
        if own_report:
            report.post_notes(self)
        return messages

    def _deal_post_template(self, template, author=None):
        """Post ``template`` to the deals' customers, emails queued. One composer.

        The composer renders the template in each customer's language (the
        template's ``lang``) and posts it on each deal's chatter.
        """
        vals = {
            "message_type": "comment",
            "subtype_id": self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_comment"),
            # queued: the mail cron sends it; SMTP never runs during the move
            "force_send": False,
            # to the customer only: the salesperson sees it in the chatter
            "notify_skip_followers": True,
        }
        if author:
            vals["author_id"] = author.id
        composer = (
            self.env["mail.compose.message"]
            .with_context(
                default_composition_mode="comment",
                default_model=self._name,
                default_res_ids=self.ids,
                default_template_id=template.id,
                mail_notify_force_send=False,
            )
            .create(vals)
        )
        return composer._action_send_mail()[1]

    def _deal_propose_template(self, template, report, missing_email=False):
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
        vals_list = []
        for lead in self:
            user = lead.user_id or self.env.user
            if missing_email:
                report.skipped(
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
                    report.skipped(
                        lead,
                        self.env._(
                            "Customer message “%(message)s”: already proposed, still open.",
                            message=template.name,
                        ),
                    )
                continue
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
                report.done(
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
        return Activity.create(vals_list)

    def rating_apply(
        self,
        rate,
        token=None,
        rating=None,
        feedback=None,
        subtype_xmlid=None,
        notify_delay_send=False,
    ):
        rating = super().rating_apply(
            rate,
            token=token,
            rating=rating,
            feedback=feedback,
            subtype_xmlid=subtype_xmlid,
            notify_delay_send=notify_delay_send,
        )
        if len(self) == 1 and self.deal_script_id and rating.consumed:
            self._deal_rating_followup(rating)
        return rating

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
        self.activity_schedule(
            activity_type_id=(callback_type or self.env.ref("mail.mail_activity_data_todo")).id,
            summary=self.env._("Call back the unhappy customer"),
            note=note,
            user_id=user.id,
            deal_feedback_callback=True,
        )

    def _deal_portal_values(self):
        """What the customer progress page shows: plain values, nothing internal.

        Only the process (steps, current step, dates reached), the shipment
        references and the documents the salesperson chose to share: no notes,
        activities, amounts or other deals. Called as superuser by the portal
        controller once the token was checked.
        """
        self.ensure_one()
        steps = self.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        current = self.deal_step_id
        if not self.active:
            status = "lost"
        elif self.stage_id.is_won:
            status = "won"
        else:
            status = "open"
        reached = {}
        for log in self.deal_log_ids.sorted(lambda log: (log.date_in, log.id)):
            reached[log.step_id] = log.date_in
        position = list(steps).index(current) if current in steps else -1
        step_values = []
        for index, step in enumerate(steps):
            if status == "won" or (position >= 0 and index < position):
                state = "done"
            elif index == position:
                state = "current"
            else:
                state = "upcoming"
            step_values.append(
                {
                    "name": step.name,
                    "state": state,
                    "date": reached.get(step) if state != "upcoming" else False,
                }
            )
        return {
            "deal_name": self.name,
            "company_name": self.company_id.name or self.env.company.name,
            "status": status,
            "current_step": (current.name or self.stage_id.name) if status == "open" else False,
            "steps": step_values,
            "salesperson_name": self.user_id.name,
            "salesperson_email": self.user_id.email,
            "tracking_ref": self.deal_tracking_ref,
            "carrier": self.deal_carrier,
            "documents": [
                {
                    "name": attachment.name,
                    "url": f"{self.access_url}/documents/{attachment.id}"
                    f"?access_token={self._portal_ensure_token()}",
                }
                for attachment in self.deal_portal_attachment_ids
            ],
        }

    # ------------------------------------------------------------
    # TIME DISCIPLINE: step deadlines (SLA), escalation ladder
    # ------------------------------------------------------------
    # On entry in a step with a deadline the deal gets its deadline and the
    # instants of its warning and second-level escalation; the cron
    # ``_cron_deal_sla`` picks the deals whose next instant has come through an
    # indexed column (``deal_sla_next_check``) and climbs the ladder, each
    # rung once per stay. Leaving the step clears it all; re-entry restarts.

    deal_sla_deadline = fields.Datetime(
        string="Step Deadline",
        readonly=True,
        copy=False,
        help="When the deal should leave its current step at the latest.",
    )
    deal_sla_state = fields.Selection(
        SLA_STATES,
        string="Deadline Status",
        default="none",
        readonly=True,
        copy=False,
        index=True,
        help="At risk: most of the step's time is used. Breached: the deadline has passed.",
    )
    deal_sla_warning_date = fields.Datetime(string="Deadline Warning", readonly=True, copy=False)
    deal_sla_escalation_date = fields.Datetime(
        string="Escalation to Manager", readonly=True, copy=False
    )
    deal_sla_level = fields.Integer(
        string="Escalation Level",
        readonly=True,
        copy=False,
        help="Technical: the last rung of the escalation ladder fired in the current "
        "stay (0 none, 1 warning, 2 breach, 3 manager).",
    )
    deal_sla_next_check = fields.Datetime(
        string="Next Deadline Check",
        readonly=True,
        copy=False,
        help="Technical: when the deadline cron must look at this deal next.",
    )
    deal_sla_label = fields.Char(string="Time Left", compute="_compute_deal_sla_label")
    deal_sla_live_state = fields.Selection(
        SLA_STATES, string="Deadline Status Now", compute="_compute_deal_sla_label"
    )

    # the cron reads only due rows of open deals, whatever the number of others
    _deal_sla_due_index = models.Index(
        "(deal_sla_next_check) WHERE deal_sla_next_check IS NOT NULL AND active"
    )

    @api.depends("deal_sla_deadline", "deal_sla_warning_date", "deal_sla_state")
    @api.depends_context("lang")
    def _compute_deal_sla_label(self):
        now = fields.Datetime.now()
        for lead in self:
            deadline = lead.deal_sla_deadline
            if not deadline or lead.deal_sla_state == "none":
                lead.deal_sla_label = False
                lead.deal_sla_live_state = "none"
                continue
            if deadline <= now:
                lead.deal_sla_live_state = "breached"
                lead.deal_sla_label = self.env._(
                    "Overdue %(time)s", time=self._deal_sla_format_delta(now - deadline)
                )
                continue
            warning = lead.deal_sla_warning_date
            lead.deal_sla_live_state = "warning" if warning and warning <= now else "ok"
            lead.deal_sla_label = self.env._(
                "%(time)s left", time=self._deal_sla_format_delta(deadline - now)
            )

    @api.model
    def _deal_sla_format_delta(self, delta):
        minutes = int(delta.total_seconds() // 60)
        days, minutes = divmod(minutes, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        if days:
            return self.env._("%(days)sd %(hours)sh", days=days, hours=hours)
        if hours:
            return self.env._("%(hours)sh %(minutes)sm", hours=hours, minutes=minutes)
        return self.env._("%(minutes)sm", minutes=minutes)

    def _deal_sla_check_writable(self, *vals_list):
        # the deadline fields are the engine's (written in sudo): a user may not
        # hide a breach over RPC
        if not self.env.su and any(SLA_ENGINE_FIELDS.intersection(vals) for vals in vals_list):
            raise AccessError(
                self.env._(
                    "The deadline of a deal's step is set by its script: it cannot be edited."
                )
            )

    # ------------------------------------------------------------
    # ENGINE: START AND CLEAR
    # ------------------------------------------------------------

    def _deal_sla_start(self, stays):
        """Start the deadline of the steps the deals ``self`` entered.

        Called once per batch of entries by the engine. The deadline counts
        from the entry in the step, in working hours of the sales team's
        working schedule (else the company's) or in calendar hours, as the
        script says.

        :param stays: the open stage log rows of the deals ``self``
        """
        cache = {}
        values = {}
        for stay in stays:
            lead = self.browse(stay.lead_id.id)
            step = stay.step_id
            if not step or not step.sla_hours or lead.deal_step_id != step:
                values[lead.id] = SLA_CLEARED
                continue
            script = lead.deal_script_id
            calendar = lead._deal_sla_calendar()
            start = stay.date_in
            deadline = self._deal_sla_add_hours(calendar, start, step.sla_hours, cache)
            warning = escalation = False
            if script.sla_warning_percent:
                warning = self._deal_sla_add_hours(
                    calendar, start, step.sla_hours * script.sla_warning_percent / 100, cache
                )
            if script.sla_escalation_hours and script.sla_escalation_user_id:
                escalation = self._deal_sla_add_hours(
                    calendar, deadline, script.sla_escalation_hours, cache
                )
            values[lead.id] = {
                "deal_sla_deadline": deadline,
                "deal_sla_state": "ok",
                "deal_sla_warning_date": warning,
                "deal_sla_escalation_date": escalation,
                "deal_sla_level": SLA_LEVEL_NONE,
                "deal_sla_next_check": warning or deadline,
            }
        self._deal_sla_write(values)

    def _deal_sla_calendar(self):
        """The working schedule the deal's deadlines count in (empty: calendar hours)."""
        self.ensure_one()
        if not self.deal_script_id.sla_working_time:
            return self.env["resource.calendar"]
        return (
            self.team_id.resource_calendar_id
            or self.company_id.resource_calendar_id
            or self.env.company.resource_calendar_id
        )

    @api.model
    def _deal_sla_add_hours(self, calendar, start, hours, cache):
        """``start`` (naive UTC) plus ``hours`` of ``calendar`` (calendar hours if empty).

        Public holidays of the schedule are skipped. ``cache`` keeps one
        computation per schedule, start and duration: deals moved together
        share their deadlines.
        """
        if not calendar:
            return start + timedelta(hours=hours)
        key = (calendar.id, start, hours)
        if key not in cache:
            end = calendar.plan_hours(hours, pytz.utc.localize(start), compute_leaves=True)
            if end:
                # plan_hours works in floats: round to the second
                end = end.astimezone(pytz.utc).replace(tzinfo=None)
                end = (end + timedelta(microseconds=500000)).replace(microsecond=0)
            else:  # a schedule without working hours
                end = start + timedelta(hours=hours)
            cache[key] = end
        return cache[key]

    def _deal_sla_write(self, values_by_lead):
        """Write the engine's deadline fields: one write per distinct set of values.

        :param values_by_lead: {lead id: values}
        """
        groups = defaultdict(list)
        for lead_id, values in values_by_lead.items():
            groups[tuple(sorted(values.items()))].append(lead_id)
        for values, lead_ids in groups.items():
            # the deadline fields are the engine's: users cannot write them
            leads = self.browse(lead_ids).sudo()
            if len(values) == len(SLA_CLEARED) and dict(values) == SLA_CLEARED:
                # most deals have no deadline: do not write what is already clear
                leads = leads.filtered(
                    lambda lead: lead.deal_sla_state != "none" or lead.deal_sla_next_check
                )
            if leads:
                leads.write(dict(values))

    # ------------------------------------------------------------
    # ENGINE: ESCALATION (cron)
    # ------------------------------------------------------------

    @api.model
    def _cron_deal_sla(self, batch_size=SLA_BATCH_SIZE):
        """Escalate the deals whose deadline instants have come, batch by batch.

        Each batch is committed with its progress (``ir.cron._commit_progress``):
        a crash loses at most the batch being processed, whose deals are then
        found due again by the next run. The escalation level reached is
        written in the same transaction as what it fired, so no rung fires
        twice. Several workers: ir.cron runs one job at a time, and the rows
        of a batch are locked with ``FOR UPDATE SKIP LOCKED`` so a manual run
        or a deal being moved concurrently is never processed twice.
        """
        IrCron = self.env["ir.cron"]
        while True:
            processed, more = self._deal_sla_process_batch(limit=batch_size)
            remaining = self._deal_sla_due_count() if more else 0
            time_left = IrCron._commit_progress(processed, remaining=remaining)
            if not processed or not remaining or time_left <= 0:
                break

    @api.model
    def _deal_sla_due_query(self, now, limit=None, lock=False):
        return SQL(
            "SELECT id FROM crm_lead WHERE active AND deal_sla_next_check <= %s"
            " ORDER BY deal_sla_next_check, id%s%s",
            now,
            SQL(" LIMIT %s", limit) if limit else SQL(),
            SQL(" FOR UPDATE SKIP LOCKED") if lock else SQL(),
        )

    @api.model
    def _deal_sla_due_count(self):
        now = fields.Datetime.now()
        query = self._deal_sla_due_query(now)
        return self.env.execute_query(SQL("SELECT count(*) FROM (%s) due", query))[0][0]

    @api.model
    def _deal_sla_process_batch(self, limit=SLA_BATCH_SIZE):
        """Climb the escalation ladder of one batch of due deals.

        :return: (number of deals processed, whether more may be due)
        """
        self.flush_model(["active", "deal_sla_next_check"])
        now = fields.Datetime.now()
        rows = self.env.execute_query(self._deal_sla_due_query(now, limit=limit, lock=True))
        # the cron acts for the system: its activities and notes are the script's
        leads = self.browse([row[0] for row in rows]).sudo()
        if not leads:
            return 0, False
        warn, breach, escalate = leads.browse(), leads.browse(), leads.browse()
        values = {}
        for lead in leads:
            level = lead.deal_sla_level
            deadline, warning = lead.deal_sla_deadline, lead.deal_sla_warning_date
            escalation = lead.deal_sla_escalation_date
            if level < SLA_LEVEL_WARNING and warning and warning <= now:
                warn |= lead
                level = SLA_LEVEL_WARNING
            if level < SLA_LEVEL_BREACH and deadline and deadline <= now:
                breach |= lead
                level = SLA_LEVEL_BREACH
            if level < SLA_LEVEL_ESCALATION and escalation and escalation <= now:
                escalate |= lead
                level = SLA_LEVEL_ESCALATION
            if deadline and deadline <= now:
                state = "breached"
            elif warning and warning <= now:
                state = "warning"
            else:
                state = "ok"
            pending = [
                instant
                for rung, instant in (
                    (SLA_LEVEL_WARNING, warning),
                    (SLA_LEVEL_BREACH, deadline),
                    (SLA_LEVEL_ESCALATION, escalation),
                )
                if instant and rung > level and instant > now
            ]
            values[lead.id] = {
                "deal_sla_level": level,
                "deal_sla_state": state,
                "deal_sla_next_check": min(pending) if pending else False,
            }
        notes = defaultdict(list)
        if warn:
            warn._deal_sla_warn(notes)
        if breach:
            breach._deal_sla_breach(notes)
        if escalate:
            escalate._deal_sla_escalate(notes)
        leads._deal_sla_write(values)
        leads._deal_sla_post(notes, breach)
        return len(leads), len(leads) == limit

    def _deal_sla_warn(self, notes):
        """First rung: an activity for the salesperson, most of the time is used."""
        vals_list = []
        for lead in self:
            user = lead.user_id or lead.team_id.user_id
            step = lead.deal_step_id
            if user:
                vals_list.append(
                    lead._deal_sla_activity_values(
                        user,
                        self.env._("Deadline approaching: %(step)s", step=step.name),
                        self.env._(
                            "The deal should leave the step %(step)s by %(deadline)s.",
                            step=step.name,
                            deadline=lead._deal_sla_format_datetime(user),
                        ),
                    )
                )
            notes[lead.id].append(
                self.env._(
                    "The deadline of step %(step)s is near (%(deadline)s).",
                    step=step.name,
                    deadline=lead._deal_sla_format_datetime(),
                )
                + (
                    self.env._(" Activity for %(user)s.", user=user.name)
                    if user
                    else self.env._(" No salesperson nor team leader to warn.")
                )
            )
        self.env["mail.activity"].create(vals_list)

    def _deal_sla_breach(self, notes):
        """Second rung: the step's "deadline breach" activities (default: one
        for the team leader), the stay marked breached, the supervisors told."""
        report = SlaReport(notes)
        step_by_lead = {lead.id: lead.deal_step_id for lead in self}
        with_templates = self.filtered(
            lambda lead: any(
                t.trigger == "sla" for t in step_by_lead[lead.id].activity_template_ids
            )
        )
        for lead in self:
            notes[lead.id].append(
                self.env._(
                    "The deadline of step %(step)s has passed (%(deadline)s).",
                    step=step_by_lead[lead.id].name,
                    deadline=lead._deal_sla_format_datetime(),
                )
            )
        if with_templates:
            with_templates._deal_schedule_activities(
                {lead.id: step_by_lead[lead.id] for lead in with_templates}, "sla", report
            )
        vals_list = []
        for lead in self - with_templates:
            step = step_by_lead[lead.id]
            user = lead.team_id.user_id or lead.user_id
            if user:
                notes[lead.id].append(
                    self.env._(
                        "Activity “%(activity)s” for %(user)s.",
                        activity=self.env._("Deal stalled at %(step)s", step=step.name),
                        user=user.name,
                    )
                )
                vals_list.append(
                    lead._deal_sla_activity_values(
                        user,
                        self.env._("Deal stalled at %(step)s", step=step.name),
                        self.env._(
                            "The deal has passed the deadline of step %(step)s "
                            "(%(deadline)s). Help the salesperson move it on.",
                            step=step.name,
                            deadline=lead._deal_sla_format_datetime(user),
                        ),
                    )
                )
        self.env["mail.activity"].create(vals_list)
        # the history is system-owned
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "in", self.ids), ("date_out", "=", False)]
        ).sla_breached = True

    def _deal_sla_escalate(self, notes):
        """Third rung: the script's sales manager gets an activity."""
        vals_list = []
        for lead in self:
            manager = lead.deal_script_id.sla_escalation_user_id
            step = lead.deal_step_id
            if not manager:
                continue
            vals_list.append(
                lead._deal_sla_activity_values(
                    manager,
                    self.env._("Escalated: deal stalled at %(step)s", step=step.name),
                    self.env._(
                        "The deal is still in step %(step)s, whose deadline was %(deadline)s.",
                        step=step.name,
                        deadline=lead._deal_sla_format_datetime(manager),
                    ),
                )
            )
            notes[lead.id].append(self.env._("Escalated to %(user)s.", user=manager.name))
        self.env["mail.activity"].create(vals_list)

    def _deal_sla_activity_values(self, user, summary, note):
        self.ensure_one()
        tz = pytz.timezone(user.tz or "UTC")
        return {
            "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
            "res_id": self.id,
            "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
            "summary": summary,
            "note": Markup("<p>%s</p>") % note,
            "date_deadline": max(
                pytz.utc.localize(self.deal_sla_deadline).astimezone(tz).date(),
                fields.Date.context_today(self.with_context(tz=user.tz)),
            ),
            "user_id": user.id,
            "automated": True,
            # the step's own: cancelled with the others when the deal moves on
            "deal_step_id": self.deal_step_id.id,
        }

    def _deal_sla_format_datetime(self, user=None):
        """The deal's deadline in ``user``'s (or the context's) timezone."""
        self.ensure_one()
        user = user or self.user_id or self.team_id.user_id
        tz = user.tz or self.env.context.get("tz") or "UTC"
        return fields.Datetime.context_timestamp(
            self.with_context(tz=tz), self.deal_sla_deadline
        ).strftime("%Y-%m-%d %H:%M %Z")

    def _deal_sla_post(self, notes, breached):
        """One note per deal; breaches also notify the supervisors."""
        bodies = {
            lead_id: Markup("<ul>%s</ul>")
            % Markup().join(Markup("<li>%s</li>") % line for line in lines)
            for lead_id, lines in notes.items()
        }
        quiet = self.browse([lead_id for lead_id in bodies if lead_id not in breached.ids])
        if quiet:
            quiet._message_log_batch(bodies={lead.id: bodies[lead.id] for lead in quiet})
        if not breached:
            return
        supervisors = (
            self.env["res.users"]
            .sudo()
            .search(
                [
                    ("all_group_ids", "in", self.env.ref("deal_stages.group_deal_supervisor").ids),
                    ("share", "=", False),
                ]
            )
        )
        for lead in breached:
            partners = supervisors.filtered(
                lambda user, lead=lead: lead.company_id in user.company_ids or not lead.company_id
            ).partner_id
            lead.with_context(mail_post_autofollow=False).message_post(
                body=Markup("<p>%s</p>%s")
                % (
                    self.env._("Deal stalled: the step's deadline has passed."),
                    bodies.get(lead.id, ""),
                ),
                partner_ids=partners.ids,
                message_type="comment",
                subtype_xmlid="mail.mt_note",
            )


    # ------------------------------------------------------------
    # DEAL CONTROL BOARD (supervisors' live view, deals at risk)
    # ------------------------------------------------------------

    deal_days_in_step = fields.Integer(
        string="Days in Step",
        compute="_compute_deal_control",
        help="Days since the deal entered its current stage.",
    )
    deal_step_sla_days = fields.Float(
        string="Step Deadline (days)",
        compute="_compute_deal_control",
        help="How long a deal may stay in its current step, in days (0: no deadline).",
    )
    deal_overdue_activity_count = fields.Integer(
        string="Overdue Script Activities",
        compute="_compute_deal_control",
        help="Activities the script created on this deal that are past their due date.",
    )
    deal_gate_blocked = fields.Boolean(
        string="Gate Blocked",
        compute="_compute_deal_gate_blocked",
        help="The deal cannot move on to the next step yet: requirements are missing.",
    )
    deal_at_risk = fields.Boolean(
        string="At Risk",
        compute="_compute_deal_control",
        search="_search_deal_at_risk",
        help="An open deal with overdue script activities, or that stands in its "
        "step longer than the step's deadline (without a deadline: longer than "
        "the 'deal_stages.risk_days' system parameter, 14 days by default).",
    )

    # ------------------------------------------------------------
    # COMPUTES
    # ------------------------------------------------------------

    def _deal_risk_days(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("deal_stages.risk_days", DEAL_DEFAULT_RISK_DAYS)
        )

    @api.depends_context("uid")
    @api.depends("date_last_stage_update", "deal_step_id", "activity_ids.date_deadline")
    def _compute_deal_control(self):
        now = fields.Datetime.now()
        risk_days = self._deal_risk_days()
        lead_ids = [lead_id for lead_id in self.ids if lead_id]
        overdue = dict(
            self.env["mail.activity"]._read_group(
                self._deal_overdue_activity_domain() + [("res_id", "in", lead_ids)],
                ["res_id"],
                ["__count"],
            )
        )
        # the current stay tells when the deal entered its step; the history
        # is readable by whoever reads the deal, sudo spares the rule joins
        entered = dict(
            self.env["crm.deal.stage.log"]
            .sudo()
            ._read_group(
                [("lead_id", "in", lead_ids), ("date_out", "=", False)],
                ["lead_id"],
                ["date_in:max"],
            )
        )
        for lead in self:
            # SLA: the step deadline in calendar hours until the SLA feature
            # gives the working-time deadline (deal_sla_deadline)
            sla_days = (lead.deal_step_id.sla_hours or 0) / 24
            since = (
                entered.get(lead._origin) or lead.date_last_stage_update or lead.create_date or now
            )
            lead.deal_days_in_step = (now - since).days if lead.deal_script_id else 0
            lead.deal_step_sla_days = sla_days
            lead.deal_overdue_activity_count = overdue.get(lead.id, 0)
            limit = timedelta(days=sla_days) if sla_days else timedelta(days=risk_days)
            lead.deal_at_risk = bool(
                lead.deal_script_id
                and lead.active
                and lead.won_status == "pending"
                and (lead.deal_overdue_activity_count or now - since > limit)
            )

    def _deal_overdue_activity_domain(self):
        return [
            ("res_model", "=", "crm.lead"),
            ("deal_step_id", "!=", False),
            ("date_deadline", "<", fields.Date.context_today(self)),
        ]

    def _search_deal_at_risk(self, operator, value):
        """Deals at risk: open, with overdue script activities, or standing in
        their step longer than its deadline (or than the risk days without).

        The SLA feature may refine "too long" (working time, warnings): this is
        the one place to change.
        """
        if operator != "in":
            return NotImplemented
        now = fields.Datetime.now()
        overdue_leads = self.env["mail.activity"]._search(self._deal_overdue_activity_domain())
        steps_by_sla = self.env["crm.deal.script.step"]._read_group(
            [("sla_hours", ">", 0)], ["sla_hours"], ["id:array_agg"]
        )
        step_ids_with_sla = [step_id for __, ids in steps_by_sla for step_id in ids]
        # the current stay started before the limit; "any!" skips the history's
        # record rules, as the condition only filters deals the user reads
        too_long = [
            Domain("deal_step_id", "not in", step_ids_with_sla)
            & Domain(
                "deal_log_ids",
                "any!",
                [
                    ("date_out", "=", False),
                    ("date_in", "<", now - timedelta(days=self._deal_risk_days())),
                ],
            )
        ]
        # one condition per distinct step deadline: few values in practice
        for sla_hours, step_ids in steps_by_sla:
            too_long.append(
                Domain("deal_step_id", "in", step_ids)
                & Domain(
                    "deal_log_ids",
                    "any!",
                    [
                        ("date_out", "=", False),
                        ("date_in", "<", now - timedelta(hours=sla_hours)),
                    ],
                )
            )
        return (
            Domain("deal_script_id", "!=", False)
            & Domain("won_status", "=", "pending")
            & Domain("active", "=", True)
            & (Domain("id", "in", overdue_leads.subselect("res_id")) | Domain.OR(too_long))
        )

    def _compute_deal_gate_blocked(self):
        # the gate feature provides _deal_missing_requirements(stage); until it
        # is installed no deal is shown as blocked
        can_check = hasattr(self, "_deal_missing_requirements")
        for lead in self:
            next_step = lead._deal_next_step() if can_check and lead.deal_step_id else False
            lead.deal_gate_blocked = bool(
                next_step and lead._deal_missing_requirements(next_step.stage_id)
            )

    def _deal_next_step(self):
        self.ensure_one()
        steps = self.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        following = steps.filtered(
            lambda s: (s.sequence, s.id) > (self.deal_step_id.sequence, self.deal_step_id.id)
        )
        return following[:1]

    # ------------------------------------------------------------
    # LIVE BOARD
    # ------------------------------------------------------------

    def _deal_board_notify(self):
        """Tell the open deal boards to reload, once per transaction.

        The message goes to the salespeople group's bus channel, which every
        CRM user's browser listens to; it carries no data, the board reloads
        through the ORM with the user's own rights.
        """
        if not any(self.sudo().mapped("deal_script_id")):
            return
        data = self.env.cr.precommit.data
        if data.get("deal_stages.board_notified"):
            return
        data["deal_stages.board_notified"] = True
        self.env["bus.bus"]._sendone(
            self.env.ref("sales_team.group_sale_salesman"), DEAL_BOARD_NOTIFICATION, {}
        )


class SlaReport:
    """Adapter: ``_deal_schedule_activities`` reports into the deals' SLA notes."""

    def __init__(self, notes):
        self.notes = notes

    def done(self, lead, text):
        self.notes[lead.id].append(text)

    def skipped(self, lead, text):
        self.notes[lead.id].append(text)
