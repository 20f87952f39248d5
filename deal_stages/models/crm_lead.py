import logging
import uuid
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

_logger = logging.getLogger(__name__)

# what a template calls to link a deal's progress page (it needs the token)
PORTAL_LINK_NAMES = ("get_portal_url", "_portal_ensure_token", "access_token", "_get_share_url")
# deals listed in full in a refusal; the others are counted
GATE_ERROR_DEALS = 20


class DealGateError(UserError):
    """A stage change refused by the gate of one or more deals.

    The message lists every missing item in plain words (RPC, import and
    tests read it); ``context["deal_gate"]`` carries the same per deal, for
    the web client's dialog that helps complete them.
    """

    def __init__(self, message, payload):
        super().__init__(message)
        # serialized by odoo.http.serialize_exception; the web client picks
        # its dialog from "exception_class"
        self.context = {"exception_class": "deal_stages.DealGateError", "deal_gate": payload}


# writes of these fields may start, change or end a deal's stay in a step
DEAL_TRACKED_FIELDS = {"stage_id", "deal_script_id", "type", "team_id", "user_id"}
# without a step deadline (SLA), a deal standing longer than this in a step is at risk
DEAL_DEFAULT_RISK_DAYS = 14
# bus notification telling the open deal boards to reload
DEAL_BOARD_NOTIFICATION = "deal_stages/board_changed"
# writes of these may mark a deal lost or restore it (Odoo: lost = archived at 0 %)
DEAL_LOST_FIELDS = {"active", "probability", "stage_id"}

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
    # versions of the process: crm_lead_deal_version.py
    _inherit = ["crm.lead", "portal.mixin", "rating.mixin", "crm.lead.deal.version"]

    deal_script_id = fields.Many2one(
        "crm.deal.script",
        compute="_compute_deal_script_id",
        store=True,
        readonly=False,
        index="btree_not_null",
        tracking=True,
        domain="[('is_template', '=', False),"
        " ('company_id', 'in', [company_id or current_company_id, False])]",
        help="The process this deal follows. New opportunities take their sales team's script.",
    )
    deal_step_id = fields.Many2one(
        "crm.deal.script.step",
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
                script_id, company_id = script_by_team.get(lead.team_id.id, (False, False))
                # a team shared by companies: its script serves its own company only
                if company_id and lead.company_id and company_id != lead.company_id.id:
                    script_id = False
                lead.deal_script_id = script_id

    @api.constrains("deal_script_id", "company_id")
    def _check_deal_script_company(self):
        # not check_company: a deal without a company (Odoo allows it) may
        # still follow its team's company script
        for lead in self:
            script_company = lead.deal_script_id.company_id
            if script_company and lead.company_id and script_company != lead.company_id:
                raise ValidationError(
                    self.env._(
                        "The deal %(deal)s belongs to %(company)s but its script %(script)s "
                        "belongs to %(script_company)s: choose a script of the deal's company.",
                        deal=lead.display_name,
                        company=lead.company_id.name,
                        script=lead.deal_script_id.display_name,
                        script_company=script_company.name,
                    )
                )

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
        # the scripts' structure is cached: no query on a stage change
        step_by_key = self.env["crm.deal.script"]._deal_config().step_by_key
        for lead in self:
            lead.deal_step_id = step_by_key.get((lead.deal_script_id.id, lead.stage_id.id), False)

    @api.depends("deal_step_id", "deal_script_id.step_ids.sequence")
    def _compute_deal_progress(self):
        config = self.env["crm.deal.script"]._deal_config()
        for lead in self:
            step = config.steps.get(lead.deal_step_id.id)
            if step:
                count = len(config.script_steps(step.script_id))
                lead.deal_progress = round((step.index + 1) * 100 / count)
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
        leads = super(
            CrmLead, self.with_context(deal_engine_collector=collector, deal_nested_write=True)
        ).create(vals_list)
        deals = leads.filtered("deal_script_id")
        if deals:
            no_origin = (self.env["crm.stage"], self.env["crm.deal.script.step"])
            deals._deal_open_stays(
                dict.fromkeys(deals.ids, no_origin), date_in=fields.Datetime.now()
            )
            deals._deal_board_notify()
        collector.run(leads)
        leads = leads.with_env(self.env)
        leads._deal_auto_advance_written()
        return leads

    def write(self, vals):
        self._deal_sla_check_writable(vals)
        if self and "stage_id" in vals and not self._deal_current_move().skip_gate:
            # the gate runs before anything is written: a refused batch
            # changes nothing, however the write came (form, kanban, RPC, import)
            self._deal_check_gate(vals)
        # writes made while this one runs (engine, automation rules) leave the
        # auto-advance to this one: it runs once, when everything is written
        nested = self.with_context(deal_nested_write=True)
        if not (self and (DEAL_TRACKED_FIELDS | DEAL_LOST_FIELDS).intersection(vals)):
            result = super(CrmLead, nested).write(vals)
            self._deal_board_notify()
            self._deal_auto_advance_written()
            return result
        if "deal_script_id" in vals:
            self._deal_check_script_change(vals["deal_script_id"])
        before = {lead.id: (lead.stage_id, lead.deal_script_id, lead.deal_step_id) for lead in self}
        # lost / restored are changes of Odoo's won/lost status, not of stage
        lost_before = self._deal_lost_ids() if DEAL_LOST_FIELDS.intersection(vals) else None
        collector = DealEngineCollector()
        leads = nested.with_context(deal_engine_collector=collector)
        result = super(CrmLead, leads).write(vals)
        leads._deal_log_transitions(before, script_assigned_now="type" in vals)
        if lost_before is not None:
            leads._deal_handle_lost_status(lost_before)
        collector.run(leads)
        self._deal_board_notify()
        self._deal_auto_advance_written()
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
        if (
            not changing
            # publishing a version migrates its deals (checked there)
            or self._deal_current_move().cause == "migrate"
            or self.env.user.has_group("deal_stages.group_deal_supervisor")
        ):
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
                lambda lead: (
                    script_assigned_now or lead.stage_id != before[lead.id][0] or before[lead.id][1]
                )
            )
            origins = {
                lead.id: (before[lead.id][0], self.env["crm.deal.script.step"]) for lead in assigned
            }
            if moved:
                moved._deal_open_stays(origins, date_in=now)
            if assigned - moved:
                (assigned - moved)._deal_open_stays(origins, date_in=None)

    def _deal_close_stays(self, date_out):
        # the history is written by the system: users only read it; date_in
        # is fetched with the search (the duration needs it: no second query)
        stays = (
            self.env["crm.deal.stage.log"]
            .sudo()
            .search_fetch([("lead_id", "in", self.ids), ("date_out", "=", False)], ["date_in"])
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
        :return: the new stage log rows
        """
        move = self._deal_current_move()
        # the history is written by the system: users only read it
        return (
            self.env["crm.deal.stage.log"]
            .sudo()
            .create(
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
    # ENGINE: AUTO-ADVANCE (a step's condition met moves the deal on)
    # ------------------------------------------------------------

    def _deal_auto_advance_written(self):
        """Re-evaluate the auto-advance of deals just written, created or
        completed (a check ticked, an activity done).

        Free when no step has a condition (a cached answer, no query); skipped
        inside another write of deals (that write re-evaluates at its end)
        and inside the auto-advance's own moves (it chains them itself).
        """
        if (
            not self
            or self.env.context.get("deal_nested_write")
            or self._deal_current_move().cause == "auto"
            or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids()
        ):
            return self.browse()
        return self._deal_auto_advance()

    def _deal_auto_advance(self):
        """Move on the deals whose step's auto-advance condition holds.

        Batch: per step, one search selects its deals matching the condition,
        one gate check keeps those whose requirements are met (the others
        stay, without error: they are evaluated again at their next write or
        document event), one write moves them to the next step (``cause =
        auto``, the condition named in the note). Deals that enter a step
        whose condition holds too move on again, at most as many times as
        their script has steps. A deal never leaves the last step by itself
        (winning is the salesperson's decision); lost and won deals stay.

        Bridges (sale, account, stock) call it on the deals of a document
        that changed; the write of a deal calls it too.

        :return: the deals moved
        """
        Step = self.env["crm.deal.script.step"]
        auto_step_ids = Step._deal_auto_advance_step_ids()
        moved_all = self.browse()
        if not (self and auto_step_ids):
            return moved_all
        deals = self.filtered(lambda lead: lead.deal_step_id.id in auto_step_ids)
        rounds = max((len(script.step_ids) for script in deals.deal_script_id), default=0)
        for __ in range(rounds):
            deals = deals.filtered(
                lambda lead: (
                    lead.deal_step_id.id in auto_step_ids
                    and lead.active
                    and lead.won_status == "pending"
                )
            )
            if not deals:
                break
            moved = self.browse()
            for step, step_deals in deals.grouped("deal_step_id").items():
                next_stage = step._next_step().stage_id
                if not next_stage:
                    continue
                try:
                    condition = step._deal_auto_advance_condition()
                    condition.validate(self)
                except (ValueError, TypeError, NameError, SyntaxError) as error:
                    # e.g. a field removed with its add-on: the deal stays, the
                    # step's form refuses the condition when next edited
                    _logger.warning("Auto-advance condition of step %s ignored: %s", step.id, error)
                    continue
                matching = step_deals.search(Domain("id", "in", step_deals.ids) & condition)
                if not matching:
                    continue
                issues = matching._deal_gate_issues(next_stage)
                ready = matching.filtered(lambda lead, issues=issues: lead.id not in issues)
                if ready:
                    # the gate was checked just above, with the same rules
                    ready._deal_move_context(
                        "auto", note=step._deal_auto_advance_note(), skip_gate=True
                    ).write({"stage_id": next_stage.id})
                    moved |= ready
            moved_all |= moved
            deals = moved
        return moved_all

    # ------------------------------------------------------------
    # ENGINE: ACTIVITIES
    # ------------------------------------------------------------

    def _deal_cancel_left_activities(self):
        """Cancel the open activities that steps the deals left created.

        Only the script's own activities of steps that ask for it go; manual
        activities and those of the current step stay.

        :return: ``DealActivities`` of the deals (the script's open activities
            that remain, the templates already applied), for
            ``_deal_schedule_activities``: one query serves both
        """
        Activity = self.env["mail.activity"]
        Activity.flush_model(
            ["res_model", "res_id", "active", "deal_script_activity_id", "deal_step_id"]
        )
        self.flush_model(["deal_applied_activity_ids"])
        # the deals are the mover's: their activities are read as the gate does
        rows = self.env.execute_query(
            SQL(
                """
                SELECT id, res_id, deal_script_activity_id, deal_step_id
                  FROM mail_activity
                 WHERE res_model = 'crm.lead' AND res_id = ANY(%s) AND active
                   AND (deal_script_activity_id IS NOT NULL OR deal_step_id IS NOT NULL)
                 UNION ALL
                SELECT NULL, lead_id, script_activity_id, NULL
                  FROM crm_lead_deal_applied_activity_rel
                 WHERE lead_id = ANY(%s)
                """,
                self.ids,
                self.ids,
            )
        )
        config = self.env["crm.deal.script"]._deal_config()
        step_of = {lead.id: lead.deal_step_id.id for lead in self}
        done = DealActivities()
        left = []
        for activity_id, lead_id, template_id, step_id in rows:
            if activity_id is None:
                done.applied.add((lead_id, template_id))
                continue
            step = config.steps.get(step_id)
            if (
                step_id
                and step_id != step_of[lead_id]
                and (
                    step.cancel_activities_on_exit
                    if step
                    else self.env["crm.deal.script.step"].browse(step_id).cancel_activities_on_exit
                )
            ):
                left.append(activity_id)
            else:
                done.open_pairs.add((lead_id, template_id))
        Activity.browse(left).unlink()
        return done

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
            when the caller has them already (saves a search), or the
            ``DealActivities`` of ``_deal_cancel_left_activities``
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
        if isinstance(open_activities, DealActivities):
            applied, open_pairs = open_activities.applied, open_activities.open_pairs
        else:
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
                        self.env._(
                            "“%(activity)s”: created once already.", activity=template.display_name
                        ),
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
                summary, note = template_lang.summary, template_lang.note
                if not (summary and note):
                    # the type's own texts (cached), in the assignee's language
                    type_summary, type_note = template_lang.activity_type_id._deal_defaults()
                    summary, note = summary or type_summary, note or type_note
                vals_list.append(
                    {
                        "res_model_id": model_id,
                        "res_id": lead.id,
                        # known here: spares Odoo's recompute and its update
                        "res_name": lead.display_name,
                        "activity_type_id": template.activity_type_id.id,
                        "summary": summary,
                        "note": note,
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
        # the deal's own address and its customer's both count (one query for all)
        emails = {
            lead.id: {lead.email_normalized, lead.partner_id.email_normalized} - {False}
            for lead in self - no_email
        }
        opted_out = set(
            self.env["mail.blacklist"]
            .sudo()
            .search_fetch([("email", "in", list(set().union(*emails.values())))], ["email"])
            .mapped("email")
        )
        blacklisted = (self - no_email).filtered(lambda lead: emails[lead.id] & opted_out)
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
        # as message_post: the sales team's alias if any (crm), per sender
        by_sender, reply_tos = defaultdict(list), {}
        for lead_id, email_from in emails_from.items():
            by_sender[email_from].append(lead_id)
        for email_from, lead_ids in by_sender.items():
            reply_tos.update(
                self.browse(lead_ids)._notify_get_reply_to(default=email_from, author_id=author_id)
            )
        documents = self._deal_template_documents(rendered)
        Message = self.env["mail.message"]
        vals_list = []
        for lead in self:
            values = rendered[lead.id]
            partner_ids = list(dict.fromkeys(values.get("partner_ids") or ()))
            body = values.get("body_html") or ""
            body_html = body
            if layout:
                lang = langs.get(lead.id) or self.env.lang
                body_html = template.with_context(lang=lang)._render_encapsulate(
                    layout,
                    body,
                    add_context={"company": companies[lead.id]},
                    context_record=lead.with_context(lang=lang),
                )
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
        messages = Message.concat(*(mail.mail_message_id for mail in mails)).sudo(False)
        # crm links a deal without customer to the contact made from its address
        for lead, message, values in zip(self, messages, vals_list, strict=True):
            if not lead.partner_id:
                lead._message_post_after_hook(message, values)
        return messages

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
        # activity: each assignee is told once below, listing their deals; the
        # emails wait in the mail queue (no SMTP inside the cron's batches)
        leads = leads.with_context(mail_activity_quick_update=True, mail_notify_force_send=False)
        vals_list, activities = [], self.env["mail.activity"]
        if warn:
            vals_list += warn._deal_sla_warn(notes)
        if breach:
            breach_vals, activities = breach.with_env(leads.env)._deal_sla_breach(notes)
            vals_list += breach_vals
        if escalate:
            vals_list += escalate._deal_sla_escalate(notes)
        activities |= leads.env["mail.activity"].create(vals_list)
        leads._deal_sla_write(values)
        leads._deal_sla_post(notes, breach)
        leads._deal_sla_notify_assignees(activities)
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
        return vals_list

    def _deal_sla_breach(self, notes):
        """Second rung: the step's "deadline breach" activities (default: one
        for the team leader), the stay marked breached, the supervisors told.

        :return: (values of the default activities to create, the activities
            the steps' templates created)
        """
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
        scheduled = self.env["mail.activity"]
        if with_templates:
            scheduled = with_templates._deal_schedule_activities(
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
        # the history is system-owned
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "in", self.ids), ("date_out", "=", False)]
        ).sla_breached = True
        return vals_list, scheduled

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
        # the supervisors who may see the deal's company
        by_partners = defaultdict(list)
        for company, leads in breached.grouped("company_id").items():
            partners = supervisors.filtered(
                lambda user, company=company: company in user.company_ids or not company
            ).partner_id
            by_partners[partners] += leads.ids
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

    def _deal_sla_notify_assignees(self, activities):
        """Tell each assignee once about the activities the deadlines gave them.

        Stands for Odoo's notification per assigned activity: one message per
        person for the whole batch.
        """
        for user, user_activities in activities.grouped("user_id").items():
            if not user.partner_id:
                continue

            def message(leads, tz, user_activities=user_activities):
                acts = user_activities.with_env(leads.env)
                return (
                    leads.env._("Deal deadlines: activities for you (%(count)s)", count=len(acts)),
                    Markup("<p>%s</p><ul>%s</ul>")
                    % (
                        leads.env._("The step deadlines of these deals gave you activities:"),
                        Markup().join(
                            Markup("<li>%s</li>")
                            % leads.env._(
                                "%(deal)s: %(activity)s, due %(date)s",
                                deal=leads.browse(act.res_id)._deal_sla_link(),
                                activity=act.summary or act.activity_type_id.name,
                                date=fields.Date.to_string(act.date_deadline),
                            )
                            for act in acts
                        ),
                    ),
                )

            self._deal_sla_notify(user.partner_id, message)

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

    # ------------------------------------------------------------
    # GATES: exit requirements, transition policy, supervisor
    # override and the guided deal (form process bar, kanban card)
    # ------------------------------------------------------------
    deal_check_ids = fields.One2many("crm.deal.check", "lead_id", string="Checklist")
    deal_step_position = fields.Char(
        string="Step Position",
        compute="_compute_deal_gate_summary",
        help="Position of the current step in the script, e.g. 3/7.",
    )
    deal_check_total = fields.Integer(string="Check Items", compute="_compute_deal_gate_summary")
    deal_check_done = fields.Integer(
        string="Check Items Done", compute="_compute_deal_gate_summary"
    )
    # deal_gate_blocked (kanban cards, control board): see the board's section
    deal_guide = fields.Json(
        string="Process Guide",
        compute="_compute_deal_guide",
        help="Technical: steps, checklist, missing requirements and next step "
        "preview shown on the deal form.",
    )

    def _compute_deal_gate_summary(self):
        # kanban cards: the scripts' structure is cached, the ticks are read
        # in one query (none when the steps have no checklist)
        config = self.env["crm.deal.script"]._deal_config()
        step_of = {lead.id: config.steps.get(lead.deal_step_id.id) for lead in self if lead.id}
        deals = self.browse([lead_id for lead_id, step in step_of.items() if step])
        done_pairs = deals._deal_done_check_pairs(
            self.env["crm.deal.script.check"].browse(
                [check_id for step in step_of.values() if step for check_id in step.check_ids]
            )
        )
        for lead in self:
            step = step_of.get(lead.id)
            if not step:
                lead.deal_step_position = False
                lead.deal_check_total = lead.deal_check_done = 0
                continue
            count = len(config.script_steps(step.script_id))
            lead.deal_step_position = f"{step.index + 1}/{count}"
            lead.deal_check_total = len(step.check_ids)
            lead.deal_check_done = sum(
                (lead.id, check_id) in done_pairs for check_id in step.check_ids
            )

    @api.depends_context("uid")
    def _compute_deal_guide(self):
        for lead in self:
            # a form being edited shows the guide of the saved deal
            origin = lead._origin
            lead.deal_guide = origin._deal_guide_data() if origin.deal_script_id else False

    # ------------------------------------------------------------
    # GATE
    # ------------------------------------------------------------

    def _deal_missing_requirements(self, stage):
        """What blocks moving the deals ``self`` to ``stage``, in plain words.

        :param stage: a ``crm.stage`` record or id
        :return: list of translated sentences; empty when the move is allowed
        """
        if isinstance(stage, int):
            stage = self.env["crm.stage"].browse(stage)
        issues = self._deal_gate_issues(stage)
        messages = []
        for lead in self:
            for issue in issues.get(lead.id, []):
                messages.append(
                    issue["message"]
                    if len(self) == 1
                    else f"{lead.display_name}: {issue['message']}"
                )
        return messages

    def _deal_check_gate(self, vals):
        stage = self.env["crm.stage"].browse(vals["stage_id"] or [])
        issues = self._deal_gate_issues(stage, vals)
        if issues:
            raise self._deal_gate_error(stage, issues)

    def _deal_gate_error(self, stage, issues):
        blocked = self.filtered(lambda lead: lead.id in issues)
        shown, hidden = blocked[:GATE_ERROR_DEALS], blocked[GATE_ERROR_DEALS:]
        stage_name = stage.display_name or self.env._("no stage")
        lines = []
        for lead in shown:
            lines.append(
                self.env._(
                    "The requirements to move “%(deal)s” to %(stage)s are not met:",
                    deal=lead.display_name,
                    stage=stage_name,
                )
            )
            lines.extend(f"- {issue['message']}" for issue in issues[lead.id])
        if hidden:
            lines.append(
                self.env._("… and %(count)s more deals that cannot move.", count=len(hidden))
            )
        payload = {
            "stage_id": stage.id,
            "stage_name": stage_name,
            "deals": [
                {"id": lead.id, "name": lead.display_name, "issues": issues[lead.id]}
                for lead in shown
            ],
            "more": len(hidden),
            "can_override": self.env.user.has_group("deal_stages.group_deal_supervisor"),
        }
        return DealGateError("\n".join(lines), payload)

    def get_deal_gate_info(self, stage_id):
        """What blocks moving these deals to ``stage_id``, for the web client.

        Returns the payload of the refusal dialog (empty ``deals``: allowed).
        """
        self.check_access("read")
        stage = self.env["crm.stage"].browse(stage_id).exists()
        issues = self._deal_gate_issues(stage)
        if not issues:
            return {"stage_id": stage.id, "stage_name": stage.display_name, "deals": []}
        return self._deal_gate_error(stage, issues).context["deal_gate"]

    def _deal_gate_issues(self, stage, vals=None):
        """Why the deals ``self`` may not move to ``stage``, in batch.

        Policy: leaving a step forward (to a later step, a stage outside the
        script or won) needs the step's requirements; under strict order the
        deal goes to the next step only and is won only from the last step; a
        deal goes back only to its step's return steps; a deal outside its
        script goes back in where it left it. Queries do not depend on the
        number of deals. Deals without a script, and moves to the stage a
        deal already stands in, are not checked.

        :param vals: the values being written with the move: the gate judges
            the deal as it will be (e.g. a field filled in the same save)
        :return: {lead id: [issue dict]}; an issue has ``kind`` (``order``,
            ``back``, ``won``, ``check``, ``field``, ``activity``),
            ``message`` and, per kind, the ids the web client needs
        """
        vals = vals or {}
        Step = self.env["crm.deal.script.step"]
        # the scripts' structure (cached); step records only for the messages
        config = self.env["crm.deal.script"]._deal_config()
        if "deal_script_id" in vals:
            new_script = self.env["crm.deal.script"].browse(vals["deal_script_id"] or [])
            script_of = dict.fromkeys(self.ids, new_script)
        else:
            script_of = {lead.id: lead.deal_script_id for lead in self}
        leads = self.filtered(
            lambda lead: script_of[lead.id] and lead.id and lead.stage_id != stage
        )
        if not leads:
            return {}
        step_by_key = config.step_by_key
        # deals standing outside their script continue where they left it
        outside = leads.filtered(
            lambda lead: (
                config.scripts.get(script_of[lead.id].id, (False,))[0]
                and (script_of[lead.id].id, lead.stage_id.id) not in step_by_key
            )
        )
        last_step_of = outside._deal_last_steps(script_of) if outside else {}
        issues, from_step_of = {}, {}
        for lead in leads:
            script_id = script_of[lead.id].id
            strict_order, step_ids = config.scripts.get(script_id, (False, ()))
            steps = Step.browse(step_ids)
            from_step = step_by_key.get((script_id, lead.stage_id.id))
            to_step = step_by_key.get((script_id, stage.id))
            lead_issues = issues.setdefault(lead.id, [])
            if not from_step:
                if lead.id in last_step_of and (to_step or stage.is_won):
                    last = last_step_of[lead.id]
                    allowed = step_ids.index(last.id) + 1 if last else 0
                    target = step_ids.index(to_step) if to_step else len(step_ids)
                    if target > allowed:
                        lead_issues.append(
                            self._deal_issue_order(steps[allowed] if allowed < len(steps) else Step)
                            if to_step
                            else self._deal_issue_won(steps)
                        )
                continue
            index = config.steps[from_step].index
            if to_step and config.steps[to_step].index < index:
                if to_step not in config.steps[from_step].back_step_ids:
                    lead_issues.append(
                        self._deal_issue_back(Step.browse(from_step), Step.browse(to_step))
                    )
                continue
            # leaving the step forward (or out of the script): its requirements
            # must be met
            from_step_of[lead.id] = Step.browse(from_step)
            next_step = steps[index + 1] if index + 1 < len(steps) else Step
            if not strict_order:
                continue
            if to_step and to_step != next_step.id:
                lead_issues.append(self._deal_issue_order(next_step))
            elif not to_step and stage.is_won and next_step:
                lead_issues.append(self._deal_issue_won(steps))
        for lead_id, lead_issues in (
            self.browse(from_step_of)._deal_requirement_issues(from_step_of, vals).items()
        ):
            issues[lead_id].extend(lead_issues)
        return {lead_id: found for lead_id, found in issues.items() if found}

    def _deal_last_steps(self, script_of):
        """{lead id: last step of its script the deal stood in (or empty)}."""
        Step = self.env["crm.deal.script.step"]
        last_step_of = dict.fromkeys(self.ids, Step)
        # the history is system-owned; the gate reads it whatever the user sees
        stays = (
            self.env["crm.deal.stage.log"]
            .sudo()
            .search(
                [("lead_id", "in", self.ids), ("step_id", "!=", False)],
                order="date_in desc, id desc",
            )
        )
        for stay in stays:
            lead_id = stay.lead_id.id
            if not last_step_of[lead_id] and stay.step_id.script_id == script_of[lead_id]:
                last_step_of[lead_id] = stay.step_id.sudo(False)
        return last_step_of

    def _deal_issue_order(self, next_step):
        return {
            "kind": "order",
            "message": self.env._(
                "Steps cannot be skipped: the next step is %(step)s.", step=next_step.name
            ),
        }

    def _deal_issue_won(self, steps):
        return {
            "kind": "won",
            "message": self.env._(
                "A deal is won only from the last step of its script, %(step)s.",
                step=steps[-1].name,
            ),
        }

    def _deal_issue_back(self, from_step, to_step):
        back = from_step.back_step_ids
        if back:
            message = self.env._(
                "From %(step)s a deal may only go back to: %(steps)s.",
                step=from_step.name,
                steps=", ".join(back.mapped("name")),
            )
        else:
            message = self.env._(
                "A deal cannot go back from %(step)s to %(target)s.",
                step=from_step.name,
                target=to_step.name,
            )
        return {"kind": "back", "message": message}

    def _deal_requirement_issues(self, step_by_lead, vals=None):
        """Unmet exit requirements of the deals ``self`` leaving their step.

        :param step_by_lead: {lead id: step being left}
        :param vals: values written with the move (see ``_deal_gate_issues``)
        :return: {lead id: [issue dict]}, only deals with issues
        """
        vals = vals or {}
        if not step_by_lead:
            return {}
        steps = self.env["crm.deal.script.step"].concat(*step_by_lead.values())
        # what each step requires (cached structure): no query when nothing is
        config = self.env["crm.deal.script"]._deal_config()
        step_config = {step.id: config.steps.get(step.id) for step in steps}
        issues = {}
        # checklist: the step's required items must be ticked on the deal
        required_checks = self.env["crm.deal.script.check"].browse(
            [
                check_id
                for step in step_config.values()
                if step
                for check_id in step.required_check_ids
            ]
        )
        if required_checks:
            done_pairs = self._deal_done_check_pairs(required_checks, vals)
            deal_check_ids = self._deal_check_ids_by_pair(required_checks)
            for lead in self:
                step = step_config[step_by_lead[lead.id].id]
                for check in required_checks.browse(step.required_check_ids if step else ()):
                    if (lead.id, check.id) not in done_pairs:
                        issues.setdefault(lead.id, []).append(
                            {
                                "kind": "check",
                                "message": self.env._(
                                    "Tick the checklist item “%(item)s”.", item=check.name
                                ),
                                "check_id": check.id,
                                "deal_check_id": deal_check_ids.get((lead.id, check.id), False),
                            }
                        )
        # fields: "set" is non-empty, non-zero (relational and monetary too)
        field_names = {
            step_id: step.field_names if step else () for step_id, step in step_config.items()
        }
        if any(field_names.values()):
            for lead in self:
                for field_name in field_names[step_by_lead[lead.id].id]:
                    field = self._fields.get(field_name)
                    if field and not lead._deal_field_is_set(field, vals):
                        issues.setdefault(lead.id, []).append(
                            {
                                "kind": "field",
                                "message": self.env._(
                                    "Fill in the field “%(field)s”.",
                                    field=field._description_string(self.env),
                                ),
                                "field": field.name,
                            }
                        )
        # conditions required to leave (e.g. the prepayment received)
        self._deal_condition_issues(step_by_lead, step_config, issues)
        # activities: those this step created on the deal must be done
        steps_with_activities = steps.browse(
            [
                step_id
                for step_id, step in step_config.items()
                if step and step.require_activities_done
            ]
        )
        if steps_with_activities:
            # the gate judges every open activity of the step, whoever sees it
            activities = (
                self.env["mail.activity"]
                .sudo()
                .search(
                    [
                        ("res_model", "=", "crm.lead"),
                        ("res_id", "in", self.ids),
                        ("deal_step_id", "in", steps_with_activities.ids),
                    ],
                    order="date_deadline, id",
                )
            )
            for activity in activities:
                if activity.deal_step_id != step_by_lead.get(activity.res_id):
                    continue
                issues.setdefault(activity.res_id, []).append(
                    {
                        "kind": "activity",
                        "message": self.env._(
                            "Mark the activity “%(activity)s” (%(user)s) as done.",
                            activity=activity.summary or activity.activity_type_id.name,
                            user=activity.user_id.name or "",
                        ),
                        "activity_id": activity.id,
                    }
                )
        return issues

    def _deal_condition_issues(self, step_by_lead, step_config, issues):
        """Add to ``issues`` the deals whose step's condition, required to
        leave it, does not hold: one search per such step."""
        steps = self.env["crm.deal.script.step"]
        for step_id, step in step_config.items():
            if not (step and step.auto_advance_required):
                continue
            step_record = steps.browse(step_id)
            leaving = self.filtered(lambda lead, s=step_id: step_by_lead[lead.id].id == s)
            try:
                condition = step_record._deal_auto_advance_condition()
                met = leaving.search(Domain("id", "in", leaving.ids) & condition)
            except (ValueError, TypeError, NameError, SyntaxError):
                # an invalid condition (a field gone with its add-on) blocks nothing
                continue
            # the condition's name is configuration, read whoever moves the deal
            name = step_record.sudo().auto_advance_label or step_record.sudo().auto_advance_domain
            for lead in leaving - met:
                issues.setdefault(lead.id, []).append(
                    {
                        "kind": "condition",
                        "message": self.env._(
                            "Wait until the condition “%(condition)s” is met.", condition=name
                        ),
                    }
                )

    def _deal_field_is_set(self, field, vals):
        """Whether ``field`` of this deal is set, counting ``vals`` being written."""
        self.ensure_one()
        if field.name in vals:
            value = field.convert_to_record(field.convert_to_cache(vals[field.name], self), self)
        else:
            value = self[field.name]
        return bool(value)

    def _deal_done_check_pairs(self, checks, vals=None):
        """{(lead id, script check id)} ticked on the deals ``self``.

        Counts ticks written in the same save (``deal_check_ids`` commands).
        """
        if not (self and checks):
            return set()
        # the gate sees every item, whatever the user's read rules
        deal_checks = (
            self.env["crm.deal.check"]
            .sudo()
            .search([("lead_id", "in", self.ids), ("check_id", "in", checks.ids)])
        )
        done = {check.id: check.done for check in deal_checks}
        for command in (vals or {}).get("deal_check_ids") or []:
            if (
                isinstance(command, (list, tuple))
                and len(command) == 3
                and command[0] == 1
                and "done" in (command[2] or {})
            ):
                done[command[1]] = bool(command[2]["done"])
        return {(check.lead_id.id, check.check_id.id) for check in deal_checks if done[check.id]}

    def _deal_check_ids_by_pair(self, checks):
        deal_checks = (
            self.env["crm.deal.check"]
            .sudo()
            .search([("lead_id", "in", self.ids), ("check_id", "in", checks.ids)])
        )
        return {(check.lead_id.id, check.check_id.id): check.id for check in deal_checks}

    # ------------------------------------------------------------
    # CHECKLIST
    # ------------------------------------------------------------

    def _deal_create_checks(self, step_by_lead, report=None):
        """Give the deals the check items of the steps they entered, in batch.

        A deal has each item once: re-entering a step keeps what was ticked.

        :param step_by_lead: {lead id: step entered}
        :param report: optional ``DealReport`` of the entry
        """
        # which steps have items: the scripts' structure (cached), no query
        config = self.env["crm.deal.script"]._deal_config()
        Check = self.env["crm.deal.script.check"]
        check_ids_of = {
            lead_id: config.steps[step.id].check_ids if step.id in config.steps else ()
            for lead_id, step in step_by_lead.items()
        }
        all_checks = Check.browse(
            list(dict.fromkeys(cid for ids in check_ids_of.values() for cid in ids))
        )
        if not all_checks:
            return self.env["crm.deal.check"]
        # check items are system-owned: users only tick them
        DealCheck = self.env["crm.deal.check"].sudo()
        existing = {
            (check.lead_id.id, check.check_id.id)
            for check in DealCheck.search(
                [("lead_id", "in", list(step_by_lead)), ("check_id", "in", all_checks.ids)]
            )
        }
        vals_list = []
        for lead in self.browse(step_by_lead):
            for check in all_checks.browse(check_ids_of[lead.id]):
                if (lead.id, check.id) in existing:
                    continue
                vals_list.append(
                    {
                        "lead_id": lead.id,
                        "check_id": check.id,
                        "step_id": check.step_id.id,
                        "sequence": check.sequence,
                        "name": check.with_context(lang=lead.user_id.lang or self.env.lang).name,
                    }
                )
                if report is not None:
                    report.done(
                        lead, self.env._("Checklist item “%(item)s” to tick.", item=check.name)
                    )
        return DealCheck.create(vals_list)

    @api.model
    def _deal_create_checks_for_steps(self, steps):
        """Instantiate new check items for the deals standing in ``steps``."""
        steps = steps.filtered(lambda step: not step.script_id.is_template)
        if not steps:
            return
        leads = self.sudo().search([("deal_step_id", "in", steps.ids)])
        if leads:
            leads._deal_create_checks({lead.id: lead.deal_step_id for lead in leads})

    def action_deal_tick_check(self, check_id, done=True):
        """Tick (or untick) the item ``check_id`` of the deal's current step.

        :param check_id: a ``crm.deal.script.check`` id of the current step
        :return: the refreshed process guide of the deal
        """
        self.ensure_one()
        self.check_access("write")
        check = self.deal_step_id.check_ids.filtered(lambda c: c.id == check_id)
        if not check:
            raise UserError(self.env._("This item is not on the checklist of the deal's step."))
        deal_check = self.deal_check_ids.filtered(lambda c: c.check_id == check)
        if not deal_check:
            deal_check = self._deal_create_checks({self.id: self.deal_step_id})
            deal_check = deal_check.sudo(False)
        deal_check.write({"done": bool(done)})
        return self._deal_guide_data()

    # ------------------------------------------------------------
    # SUPERVISOR OVERRIDE
    # ------------------------------------------------------------

    def action_deal_force_stage(self, stage_id, reason):
        """Move the deals to ``stage_id`` past unmet gates: supervisors only.

        The stay is logged with ``cause = override`` and the reason as note;
        the deal's chatter records what was missing.
        """
        if not self.env.user.has_group("deal_stages.group_deal_supervisor"):
            raise AccessError(
                self.env._("Only deal supervisors can move a deal past its requirements.")
            )
        reason = (reason or "").strip()
        if not reason:
            raise UserError(
                self.env._("Give the reason for moving the deal past its requirements.")
            )
        stage = self.env["crm.stage"].browse(int(stage_id)).exists()
        if not stage:
            raise UserError(self.env._("Choose an existing stage."))
        self.check_access("write")
        issues = self._deal_gate_issues(stage)
        bodies = {}
        for lead in self:
            body = Markup("<p>%s</p><p>%s</p>") % (
                self.env._("Moved to %(stage)s by a supervisor override.", stage=stage.name),
                self.env._("Reason: %(reason)s", reason=reason),
            )
            if issues.get(lead.id):
                body += Markup("<p>%s</p><ul>%s</ul>") % (
                    self.env._("Requirements that were not met:"),
                    Markup().join(
                        Markup("<li>%s</li>") % issue["message"] for issue in issues[lead.id]
                    ),
                )
            bodies[lead.id] = body
        self._deal_move_context("override", note=reason, skip_gate=True).write(
            {"stage_id": stage.id}
        )
        self._message_log_batch(bodies=bodies)
        return True

    def action_deal_open_force_stage(self):
        """Open the override wizard for these deals (asks for the reason)."""
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Force Stage"),
            "res_model": "crm.deal.force.stage",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_lead_ids": self.ids},
        }

    # ------------------------------------------------------------
    # GUIDE (deal form)
    # ------------------------------------------------------------

    def _deal_next_stage(self):
        """The stage the deal moves to next: the next step's, or won at the end."""
        self.ensure_one()
        step = self.deal_step_id
        if not step:
            return self.env["crm.stage"]
        next_step = step._next_step()
        if next_step:
            return next_step.stage_id
        return self._stage_find(domain=[("is_won", "=", True)])

    def _deal_guide_data(self):
        """Everything the process bar of the deal form shows (JSON-ready)."""
        self.ensure_one()
        script = self.deal_script_id
        steps = script.step_ids
        current = self.deal_step_id
        now = fields.Datetime.now()
        hours = dict.fromkeys(steps.ids, 0.0)
        for log in self.sudo().deal_log_ids:
            if log.step_id.id in hours:
                end = log.date_out or now
                hours[log.step_id.id] += max((end - log.date_in).total_seconds(), 0) / 3600
        current_index = list(steps).index(current) if current else -1
        step_data = []
        for index, step in enumerate(steps):
            if not current:
                state = "upcoming"
            elif index < current_index:
                state = "done"
            elif index == current_index:
                state = "current"
            else:
                state = "upcoming"
            step_data.append(
                {
                    "id": step.id,
                    "name": step.name,
                    "stage_id": step.stage_id.id,
                    "state": state,
                    "hours": round(hours[step.id], 2),
                }
            )
        deal_checks = {check.check_id.id: check for check in self.sudo().deal_check_ids}
        checks = []
        for check in current.check_ids:
            deal_check = deal_checks.get(check.id)
            checks.append(
                {
                    "check_id": check.id,
                    "name": check.name,
                    "required": check.required,
                    "done": bool(deal_check and deal_check.done),
                    "done_by": deal_check.done_by_id.name if deal_check and deal_check.done else "",
                    "done_date": fields.Datetime.to_string(deal_check.done_date)
                    if deal_check and deal_check.done_date
                    else "",
                }
            )
        next_stage = self._deal_next_stage()
        missing = []
        if current:
            missing = self._deal_gate_issues(next_stage).get(self.id, []) if next_stage else []
            if not next_stage:
                missing = self._deal_requirement_issues({self.id: current}).get(self.id, [])
        return {
            "script": script.display_name,
            "steps": step_data,
            "current_step_id": current.id,
            "position": current_index + 1,
            "checks": checks,
            "missing": missing,
            "next_stage": {"id": next_stage.id, "name": next_stage.display_name}
            if next_stage
            else False,
            "next": self._deal_next_step_preview(current._next_step() if current else current),
            "can_write": self.has_access("write"),
            "can_override": self.env.user.has_group("deal_stages.group_deal_supervisor"),
        }

    def _deal_next_step_preview(self, step):
        """What entering ``step`` will create and send for this deal."""
        self.ensure_one()
        if not step:
            return False
        today = fields.Date.context_today(self)
        activities = []
        for template in step.activity_template_ids.filtered(lambda t: t.trigger == "enter"):
            user, _warning = self._deal_activity_assignee(template)
            deadline = self._deal_activity_deadline(template, user, today, {})
            activities.append(
                {
                    "summary": template.summary or template.activity_type_id.name,
                    "type": template.activity_type_id.name,
                    "user": user.name,
                    "deadline_days": template.deadline_days,
                    "working_days": template.deadline_working_days,
                    "date": fields.Date.to_string(deadline),
                }
            )
        mode_labels = dict(step._fields["mail_mode"]._description_selection(self.env))
        return {
            "id": step.id,
            "name": step.name,
            "activities": activities,
            "mail": {
                "name": step.mail_template_id.name,
                "mode": mode_labels.get(step.mail_mode, ""),
            }
            if step.mail_template_id
            else False,
            # server actions are administrators' records: users see their names
            "actions": step.sudo().server_action_ids.mapped("name"),
            "checks": step.check_ids.mapped("name"),
        }

    # ------------------------------------------------------------
    # EXCEPTIONS: refusal (lost), restore, order changes
    # ------------------------------------------------------------

    deal_change_ids = fields.One2many(
        "crm.deal.order.change", "lead_id", string="Order Changes", readonly=True
    )
    deal_change_count = fields.Integer(string="Changes", compute="_compute_deal_change_count")

    @api.depends("deal_change_ids")
    def _compute_deal_change_count(self):
        counts = dict(
            self.env["crm.deal.order.change"]._read_group(
                [("lead_id", "in", self.ids)], ["lead_id"], ["__count"]
            )
        )
        for lead in self:
            lead.deal_change_count = counts.get(lead, 0)

    def action_set_lost(self, **additional_values):
        """Odoo's Lost (its wizard and RPC alike) runs the lost-at step's clean-up.

        Odoo archives the deal, then writes the reason and the 0 %: the
        clean-up runs once, after both, in batch.
        """
        deals = self.filtered("deal_script_id")
        if not deals:
            return super().action_set_lost(**additional_values)
        lost_before = deals._deal_lost_ids()
        reason = self.env["crm.lost.reason"].browse(additional_values.get("lost_reason_id"))
        deals.filtered(lambda lead: lead.id not in lost_before)._deal_check_lost_reason(reason)
        result = super(CrmLead, self._deal_move_context("lost")).action_set_lost(
            **additional_values
        )
        lost = deals._deal_lost_ids() - lost_before
        if lost:
            deals.browse(lost)._deal_process_lost()
        # Odoo returns None, which XML-RPC cannot send back to integrators
        return True if result is None else result

    def action_restore(self):
        result = super().action_restore()
        # Odoo returns None, which XML-RPC cannot send back to integrators
        return True if result is None else result

    def _deal_lost_ids(self):
        """Ids of the deals of ``self`` that follow a script and are lost."""
        return {lead.id for lead in self if lead.deal_script_id and lead.won_status == "lost"}

    def _deal_handle_lost_status(self, lost_before):
        """Apply refusal / restore to deals whose won/lost status just changed.

        Called by ``write``: archiving at 0 % over RPC or import is a loss too.
        ``action_set_lost`` handles its deals itself, once its writes are done.
        """
        lost_now = self._deal_lost_ids()
        restored = self.browse(lost_before - lost_now).filtered("deal_script_id")
        if restored:
            restored._deal_process_restore()
        newly_lost = self.browse(lost_now - lost_before)
        if newly_lost and self._deal_current_move().cause != "lost":
            newly_lost._deal_check_lost_reason()
            newly_lost._deal_process_lost()

    def _deal_check_lost_reason(self, reason=None):
        """Refuse to lose deals without reason at steps that require one."""
        missing = self.filtered(
            lambda lead: (
                lead.deal_step_id.lost_reason_required and not (reason or lead.lost_reason_id)
            )
        )
        if missing:
            raise UserError(
                self.env._(
                    "A lost reason is required to mark a deal lost at the step %(step)s: "
                    "choose a lost reason for %(deals)s.",
                    step=missing[0].deal_step_id.name,
                    deals=", ".join(missing.mapped("display_name")),
                )
            )

    def _deal_process_lost(self):
        """Clean-up of deals just lost, in batch.

        A ``lost`` stay at the lost-at step (the reason in its note), the
        script's open activities cancelled (manual ones stay), the step's
        ``lost`` activities and its refusal message to the customer.
        """
        now = fields.Datetime.now()
        self._deal_close_stays(now)
        logs = self.env["crm.deal.stage.log"].sudo()  # system-owned history
        for reason, leads in self.grouped("lost_reason_id").items():
            logs |= leads._deal_move_context("lost", note=reason.name or False)._deal_open_stays(
                {lead.id: (lead.stage_id, lead.deal_step_id) for lead in leads}, date_in=now
            )
        # the entry work of the step is not redone for a lost deal
        logs.entry_done = True
        self._deal_cancel_script_activities()
        report = DealReport()
        step_by_lead = {lead.id: lead.deal_step_id for lead in self if lead.deal_step_id}
        steps = self.browse(step_by_lead)
        steps._deal_schedule_activities(step_by_lead, "lost", report)
        groups = {}
        for lead in steps:
            step = step_by_lead[lead.id]
            if step.lost_mail_template_id:
                key = (step.lost_mail_template_id, step.mail_mode or "auto")
                groups[key] = groups.get(key, self.browse()) | lead
        for (template, mode), leads in groups.items():
            leads._deal_send_template(template, mode, report)
        titles = {}
        for lead in self:
            if lead.deal_step_id:
                title = self.env._("Lost at the step %(step)s.", step=lead.deal_step_id.name)
            else:
                title = self.env._("Lost outside the steps of its script.")
            if lead.lost_reason_id:
                title += " " + self.env._("Reason: %(reason)s", reason=lead.lost_reason_id.name)
            titles[lead.id] = title
        self._deal_log_report(report, titles)

    def _deal_cancel_script_activities(self):
        """Cancel the open activities the script created (not the refusal clean-up).

        Manual activities stay; the clean-up of an earlier refusal too.
        """
        self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                ("deal_mail_template_id", "!=", False),
                "&",
                ("deal_script_activity_id", "!=", False),
                ("deal_script_activity_id.trigger", "!=", "lost"),
            ]
        ).unlink()

    def _deal_process_restore(self):
        """Put restored deals back in the step they were lost at.

        A ``restore`` stay, then the step's entry work with its re-entry
        policy: ``once`` activities are not created again.
        """
        Log = self.env["crm.deal.stage.log"].sudo()
        lost_log_by_lead = {}
        for log in Log.search([("lead_id", "in", self.ids), ("cause", "=", "lost")]):
            lost_log_by_lead.setdefault(log.lead_id.id, log)  # latest first
        leads = self.browse([lead_id for lead_id in self.ids if lead_id in lost_log_by_lead])
        if not leads:
            return
        in_place = leads.filtered(lambda lead: lead.stage_id == lost_log_by_lead[lead.id].stage_id)
        if in_place:
            now = fields.Datetime.now()
            in_place._deal_close_stays(now)
            in_place._deal_move_context("restore")._deal_open_stays(
                {lead.id: (lead.stage_id, lead.deal_step_id) for lead in in_place}, date_in=now
            )
        # moved while lost: back to the lost-at stage
        moved = (leads - in_place).grouped(lambda lead: lost_log_by_lead[lead.id].stage_id)
        for stage, stage_leads in moved.items():
            if stage:
                stage_leads._deal_move_context("restore", skip_gate=True).write(
                    {"stage_id": stage.id}
                )
        leads._deal_run_entry_automation()
        leads._deal_restore_refusal_activities()

    def _deal_restore_refusal_activities(self):
        """A restored deal: withdraw the refusal message, point at the clean-up.

        The proposed refusal message is cancelled (the customer must not be
        told the order is cancelled). The refusal's clean-up activities stay,
        as work may have started; the deal's note lists those still open.
        """
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                ("deal_mail_template_id", "in", self.deal_step_id.lost_mail_template_id.ids),
                ("deal_script_activity_id.trigger", "=", "lost"),
            ]
        )
        proposals = activities.filtered("deal_mail_template_id")
        proposals.unlink()
        bodies = {}
        for lead_id, clean_up in (activities - proposals).grouped("res_id").items():
            bodies[lead_id] = Markup("<p>%s</p><ul>%s</ul>") % (
                self.env._(
                    "Restored. Activities of the refusal still open (cancel them if they no "
                    "longer apply):"
                ),
                Markup().join(
                    Markup("<li>%s</li>")
                    % self.env._(
                        "“%(activity)s” for %(user)s",
                        activity=act.summary or act.activity_type_id.name,
                        user=act.user_id.name,
                    )
                    for act in clean_up
                ),
            )
        if bodies:
            self.browse(bodies)._message_log_batch(bodies=bodies)

    def _deal_log_report(self, report, title_by_lead):
        """One internal note per deal: its title, then what was done and skipped."""
        bodies = {}
        for lead in self:
            done, skipped = report.lines.get(lead.id, ([], []))
            body = Markup("<p>%s</p>") % title_by_lead[lead.id]
            for label, lines in ((self.env._("Done:"), done), (self.env._("Skipped:"), skipped)):
                if lines:
                    body += Markup("<p>%s</p><ul>%s</ul>") % (
                        label,
                        Markup().join(Markup("<li>%s</li>") % line for line in lines),
                    )
            bodies[lead.id] = body
        if bodies:
            self.browse(bodies)._message_log_batch(bodies=bodies)

    def _deal_return_steps(self):
        """Steps an order change may send the deal back to: the current one and earlier."""
        self.ensure_one()
        steps = self.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        if self.deal_step_id not in steps:
            return steps.browse()
        return steps[: list(steps).index(self.deal_step_id) + 1]

    def _deal_default_return_step(self, change_type):
        """The script's return step for ``change_type``, if reachable, else the current step."""
        self.ensure_one()
        default = self.deal_script_id and self.deal_script_id._default_return_step(change_type)
        return default if default and default in self._deal_return_steps() else self.deal_step_id

    def action_deal_order_change(self):
        """Open the order change wizard (clear error if the deal can't be changed)."""
        self.ensure_one()
        self.env["crm.deal.order.change"]._check_lead_changeable(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Order Change"),
            "res_model": "crm.deal.order.change.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_lead_id": self.id},
        }

    def action_view_deal_changes(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Order Changes"),
            "res_model": "crm.deal.order.change",
            "view_mode": "list,form",
            "domain": [("lead_id", "=", self.id)],
            "context": {"default_lead_id": self.id, "create": False},
        }

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
        help="Days from the deal's entry in its current step to the step's deadline "
        "(working hours of the schedule, nights and weekends between them included; "
        "0: no deadline).",
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
        help="An open deal with overdue script activities, or whose step deadline "
        "is near (warning) or passed; in a step without a deadline, one that stands "
        "there longer than the 'deal_stages.risk_days' system parameter (14 days by "
        "default).",
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
    @api.depends(
        "date_last_stage_update",
        "deal_step_id",
        "activity_ids.date_deadline",
        "deal_sla_state",
        "deal_sla_deadline",
        "deal_sla_warning_date",
    )
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
            since = (
                entered.get(lead._origin) or lead.date_last_stage_update or lead.create_date or now
            )
            # the step's deadline is the SLA engine's (working time, see
            # _deal_sla_start): shown as days from the entry in the step; the
            # same conditions as _search_deal_at_risk
            with_deadline = lead.deal_sla_state != "none"
            deadline = with_deadline and lead.deal_sla_deadline
            warning = with_deadline and lead.deal_sla_warning_date
            lead.deal_days_in_step = (now - since).days if lead.deal_script_id else 0
            lead.deal_step_sla_days = (
                max((deadline - since).total_seconds(), 0) / 86400 if deadline else 0
            )
            lead.deal_overdue_activity_count = overdue.get(lead.id, 0)
            if with_deadline:
                late = (
                    lead.deal_sla_state in ("warning", "breached")
                    or bool(warning and warning <= now)
                    or bool(deadline and deadline <= now)
                )
            else:
                late = now - since > timedelta(days=risk_days)
            lead.deal_at_risk = bool(
                lead.deal_script_id
                and lead.active
                and lead.won_status == "pending"
                and (lead.deal_overdue_activity_count or late)
            )

    def _deal_overdue_activity_domain(self):
        return [
            ("res_model", "=", "crm.lead"),
            ("deal_step_id", "!=", False),
            ("date_deadline", "<", fields.Date.context_today(self)),
        ]

    def _search_deal_at_risk(self, operator, value):
        """Deals at risk: open, with overdue script activities, or whose step
        deadline (the SLA engine's, in working time) is near or passed; in a
        step without a deadline, standing there longer than the risk days.

        Stored columns only (one subquery per condition): the deadline's state
        as the cron last set it, or its dates already reached since.
        """
        if operator != "in":
            return NotImplemented
        now = fields.Datetime.now()
        overdue_leads = self.env["mail.activity"]._search(self._deal_overdue_activity_domain())
        with_deadline = Domain("deal_sla_state", "!=", "none")
        late = with_deadline & (
            Domain("deal_sla_state", "in", ["warning", "breached"])
            | Domain("deal_sla_warning_date", "<=", now)
            | Domain("deal_sla_deadline", "<=", now)
        )
        # the current stay started before the risk days; "any!" skips the
        # history's record rules, as the condition only filters deals the
        # user reads
        stalled = ~with_deadline & Domain(
            "deal_log_ids",
            "any!",
            [
                ("date_out", "=", False),
                ("date_in", "<", now - timedelta(days=self._deal_risk_days())),
            ],
        )
        return (
            Domain("deal_script_id", "!=", False)
            & Domain("won_status", "=", "pending")
            & Domain("active", "=", True)
            & (Domain("id", "in", overdue_leads.subselect("res_id")) | late | stalled)
        )

    def _compute_deal_gate_blocked(self):
        # the requirements of the current steps, in batch (see GATES); at the
        # last step they are what winning the deal needs
        deals = self.filtered(lambda lead: lead.deal_step_id and lead.id)
        blocked = deals._deal_requirement_issues({lead.id: lead.deal_step_id for lead in deals})
        for lead in self:
            lead.deal_gate_blocked = bool(blocked.get(lead.id))

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
        # browse, not env.ref: no existence query on every move
        group_id = self.env["ir.model.data"]._xmlid_to_res_id("sales_team.group_sale_salesman")
        self.env["bus.bus"]._sendone(
            self.env["res.groups"].browse(group_id), DEAL_BOARD_NOTIFICATION, {}
        )


class DealActivities:
    """What the deals' script activities are: open (lead id, template id)
    pairs and templates already applied (see ``_deal_cancel_left_activities``)."""

    __slots__ = ("applied", "open_pairs")

    def __init__(self):
        self.applied = set()
        self.open_pairs = set()


class SlaReport:
    """Adapter: ``_deal_schedule_activities`` reports into the deals' SLA notes."""

    def __init__(self, notes):
        self.notes = notes

    def done(self, lead, text):
        self.notes[lead.id].append(text)

    def skipped(self, lead, text):
        self.notes[lead.id].append(text)
