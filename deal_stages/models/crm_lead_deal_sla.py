"""Deal feature: step deadlines (SLA) and their escalation ladder."""

from collections import defaultdict
from datetime import timedelta

import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..tools import SlaOutcome

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


class CrmLeadDealSla(models.AbstractModel):
    _name = "crm.lead.deal.sla"
    _description = "Deal: Step Deadlines"

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

    def _deal_sla_verify_writable(self, *vals_list):
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

    def _deal_sla_start(self, stays, starts=None):
        """Start the deadline of the steps the deals ``self`` entered.

        Called once per batch of entries by the engine. The deadline counts
        from the entry in the step, in working hours of the sales team's
        working schedule (else the company's) or in calendar hours, as the
        script says.

        :param stays: the open stage log rows of the deals ``self``
        :param starts: {lead id: start} where the deadline counts from an
            earlier moment than the entry (a migrated deal keeps its time)
        """
        cache = {}
        values = {}
        # which steps have a deadline: the scripts' structure (cached)
        config = self.env["crm.deal.script"]._deal_config()
        for stay in stays:
            lead = self.browse(stay.lead_id.id)
            step = stay.step_id
            step_config = config.steps.get(step.id)
            if not (step_config and step_config.sla_hours) or lead.deal_step_id != step:
                values[lead.id] = SLA_CLEARED
                continue
            script = lead.deal_script_id
            calendar = lead._deal_sla_calendar()
            start = (starts or {}).get(lead.id) or stay.date_in
            deadline = self._deal_sla_add_hours(calendar, start, step_config.sla_hours, cache)
            warning = escalation = False
            if script.sla_warning_percent:
                warning = self._deal_sla_add_hours(
                    calendar, start, step_config.sla_hours * script.sla_warning_percent / 100, cache
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

    def _deal_sla_clear(self):
        """End the deadline of the deals ``self`` (they left their step)."""
        self._deal_sla_write(dict.fromkeys(self.ids, SLA_CLEARED))

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
        # one create of the batch's activities, without Odoo's notification per
        # activity: each assignee is told once at the end of the batch, listing
        # their deals; the emails wait in the mail queue (no SMTP inside the
        # cron's batches)
        leads = leads.with_context(mail_notify_force_send=False)
        vals_list = []
        if warn:
            vals_list += warn._deal_sla_warn(notes)
        if breach:
            vals_list += breach.with_env(leads.env)._deal_sla_breach(notes)
        if escalate:
            vals_list += escalate._deal_sla_escalate(notes)
        Activity = leads.env["mail.activity"]
        Activity._deal_engine_create(vals_list)
        leads._deal_sla_write(values)
        leads._deal_sla_post(notes, breach)
        # the batch is committed next: its assignees are told now, once
        Activity._deal_notify_queued()
        return len(leads), len(leads) == limit

    def _deal_sla_warn(self, notes):
        """First rung: an activity for the salesperson, most of the time is used.

        :return: the values of the activities to create
        """
        vals_list = []
        for lead in self:
            user = lead.user_id or lead.team_id.user_id
            step = lead.deal_step_id
            if user:
                # the activity in its assignee's language (the cron's is OdooBot's)
                env = lead.with_context(lang=user.lang or self.env.lang).env
                vals_list.append(
                    lead._deal_sla_activity_values(
                        user,
                        env._("Deadline approaching: %(step)s", step=step.with_env(env).name),
                        env._(
                            "The deal should leave the step %(step)s by %(deadline)s.",
                            step=step.with_env(env).name,
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
        return vals_list

    def _deal_sla_breach(self, notes):
        """Second rung: the step's "deadline breach" activities (default: one
        for the team leader), the stay marked breached, the supervisors told.

        :return: the values of the default activities to create (the steps'
            templates create theirs)
        """
        outcome = SlaOutcome(notes)
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
                {lead.id: step_by_lead[lead.id] for lead in with_templates}, "sla", outcome
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
                env = lead.with_context(lang=user.lang or self.env.lang).env
                vals_list.append(
                    lead._deal_sla_activity_values(
                        user,
                        env._("Deal stalled at %(step)s", step=step.with_env(env).name),
                        env._(
                            "The deal has passed the deadline of step %(step)s "
                            "(%(deadline)s). Help the salesperson move it on.",
                            step=step.with_env(env).name,
                            deadline=lead._deal_sla_format_datetime(user),
                        ),
                    )
                )
        # the history is system-owned
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "in", self.ids), ("date_out", "=", False)]
        ).sla_breached = True
        return vals_list

    def _deal_sla_escalate(self, notes):
        """Third rung: the script's sales manager gets an activity.

        :return: the values of the activities to create
        """
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
        return vals_list

    def _deal_sla_activity_values(self, user, summary, note):
        self.ensure_one()
        tz = pytz.timezone(user.tz or "UTC")
        return {
            # cached look-ups: no query per deal
            "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
            "res_id": self.id,
            "activity_type_id": self.env["ir.model.data"]._xmlid_to_res_id(
                "mail.mail_activity_data_todo"
            ),
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

    def _deal_sla_format_datetime(self, user=None, tz=None):
        """The deal's deadline in ``tz``, or ``user``'s (or the context's) timezone."""
        self.ensure_one()
        user = user or self.user_id or self.team_id.user_id
        tz = tz or user.tz or self.env.context.get("tz") or "UTC"
        return fields.Datetime.context_timestamp(
            self.with_context(tz=tz), self.deal_sla_deadline
        ).strftime("%Y-%m-%d %H:%M %Z")

    def _deal_sla_post(self, notes, breached):
        """One note per deal, in one insert; breaches also tell the supervisors.

        The note of a breach names the supervisors told; they get one message
        for the whole batch (in their inbox or by email, as each chose),
        listing the stalled deals.
        """
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
        # the supervisors who may read the deal (its team's, or of all teams):
        # the note names them and lets them read it, so not those of other
        # teams or companies (one access query per supervisor)
        readable = {
            user: set(breached.with_user(user)._filtered_access("read").ids) for user in supervisors
        }
        by_partners = defaultdict(list)
        for lead in breached:
            partners = supervisors.filtered(lambda user, lead=lead: lead.id in readable[user])
            by_partners[partners.partner_id].append(lead.id)
        title = self.env._("Deal stalled: the step's deadline has passed.")
        for partners, lead_ids in by_partners.items():
            leads = self.browse(lead_ids)
            leads._message_log_batch(
                bodies={
                    lead_id: Markup("<p>%s</p>%s") % (title, bodies.get(lead_id, ""))
                    for lead_id in lead_ids
                },
                partner_ids=partners.ids,
            )
            leads._deal_sla_notify(partners, lambda leads, tz: leads._deal_sla_stalled_message(tz))

    def _deal_sla_stalled_message(self, tz):
        """(subject, body) telling the supervisors the deals ``self`` stalled."""
        return (
            self.env._("Deals stalled: %(count)s", count=len(self)),
            Markup("<p>%s</p><ul>%s</ul>")
            % (
                self.env._("The deadline of these deals' steps has passed:"),
                Markup().join(
                    Markup("<li>%s</li>")
                    % self.env._(
                        "%(deal)s: step %(step)s, deadline %(deadline)s",
                        deal=lead._deal_sla_link(),
                        step=lead.deal_step_id.name,
                        deadline=lead._deal_sla_format_datetime(tz=tz),
                    )
                    for lead in self
                ),
            ),
        )

    def _deal_sla_notify(self, partners, make_message):
        """Notify ``partners`` (inbox or email, as each chose; emails queued).

        :param make_message: callable(leads, tz) returning (subject, body), with
            ``leads`` the deals ``self`` in the recipients' language
        """
        for (lang, tz), group in partners.grouped(lambda p: (p.lang, p.tz)).items():
            subject, body = make_message(self.with_context(lang=lang), tz)
            self.env["mail.thread"].with_context(lang=lang).message_notify(
                partner_ids=group.ids, subject=subject, body=body
            )

    def _deal_sla_link(self):
        """The deal as a link that opens it, in the web client or from an email."""
        self.ensure_one()
        url = f"{self.get_base_url()}/mail/view?model={self._name}&res_id={self.id}"
        return Markup('<a href="%s">%s</a>') % (url, self.display_name)
