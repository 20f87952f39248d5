from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from .base_automation import DealEngineCollector, DealMove

# writes of these fields may start, change or end a deal's stay in a step
DEAL_TRACKED_FIELDS = {"stage_id", "deal_script_id", "type", "team_id", "user_id"}


class CrmLead(models.Model):
    _inherit = "crm.lead"

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
        collector.run(leads)
        return leads.with_env(self.env)

    def write(self, vals):
        if not (self and DEAL_TRACKED_FIELDS.intersection(vals)):
            return super().write(vals)
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
        # the history is written by the system: users only read it
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "in", self.ids), ("date_out", "=", False)]
        ).write({"date_out": date_out})

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
        """
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                ("deal_step_id", "!=", False),
                ("deal_step_id.cancel_activities_on_exit", "=", True),
            ]
        )
        step_by_lead = {lead.id: lead.deal_step_id for lead in self}
        activities.filtered(
            lambda act: act.deal_step_id != step_by_lead[act.res_id]
        ).unlink()

    def _deal_schedule_activities(self, step_by_lead, trigger, report):
        """Create the activities the steps' templates of ``trigger`` ask for.

        One ``create`` for all deals. Re-entry policy: ``once`` templates are
        never applied twice to a deal (done, cancelled or open); ``always``
        ones are applied again unless the previous activity is still open.

        :param step_by_lead: {lead id: step} the step whose templates apply
        :param trigger: ``enter``, ``lost``, ``sla`` or ``change``
        :param report: a ``DealReport`` collecting what was done and skipped
        """
        templates = self.env["crm.deal.script.step"].concat(
            *step_by_lead.values()
        ).activity_template_ids.filtered(lambda t: t.trigger == trigger)
        if not templates:
            return self.env["mail.activity"]
        leads = self.browse(step_by_lead)
        applied = leads._deal_applied_template_pairs(templates)
        open_pairs = {
            (act.res_id, act.deal_script_activity_id.id)
            for act in self.env["mail.activity"].search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("res_id", "in", leads.ids),
                    ("deal_script_activity_id", "in", templates.ids),
                ]
            )
        }
        today = fields.Date.context_today(self)
        deadlines = {}
        model_id = self.env["ir.model"]._get_id("crm.lead")
        vals_list, new_pairs = [], []
        for lead in leads:
            for template in step_by_lead[lead.id].activity_template_ids.sorted("sequence"):
                if template.trigger != trigger:
                    continue
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
                template_lang = template.with_context(lang=user.lang or self.env.lang)
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
