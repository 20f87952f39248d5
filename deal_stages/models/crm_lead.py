"""The deal: crm.lead following a script (core of deal_stages).

Each feature lives in its own abstract model, listed in ``_inherit`` below
and named like its file (``crm_lead_deal_sla.py`` holds ``crm.lead.deal.sla``).
This file keeps the core fields, ``create``/``write``, the stays and the
engine's entry points, and every override of an Odoo method: overrides must
stay on crm.lead itself, above portal.mixin and rating.mixin in the MRO.

The path of one stage move (``lead.write({"stage_id": ...})``):

1. ``write``: the gate refuses the whole batch or lets it pass
   (``_deal_verify_gate`` -> ``_deal_gate_issues``, crm.lead.deal.gate);
   a refusal raises ``tools.DealGateError``.
2. Odoo writes the stage; the shipped automation rules only collect the
   deals (``base.automation._process`` -> ``tools.DealEngineCollector``).
3. ``_deal_update_stays`` closes the previous stays
   (``_deal_close_stays``, which clears the step deadline) and opens the new
   ones (``_deal_open_stays``: crm.deal.stage.log rows, with the cause and
   note of the ``tools.DealMove`` in the context).
4. The collector runs ``_deal_run_entry_automation`` once for the batch:
   ``crm.deal.stage.log._process_entries`` cancels the activities of the
   steps left and schedules the new ones (crm.lead.deal.activity), sends or
   proposes the customer messages (crm.lead.deal.message), creates the
   checklist (crm.deal.check), runs the step's server actions, starts the
   deadline (crm.lead.deal.sla) and posts one note per deal
   (``tools.DealOutcome``); the first of Odoo's tracking messages posted at
   the commit asks the reply-to and alias domain for all the moved deals
   (``_deal_prepare_tracking_messages``, crm.lead.deal.mail).
5. ``_deal_board_notify`` tells the open control boards to reload
   (crm.lead.deal.control), and ``_deal_auto_advance_written`` moves on the
   deals whose next step's condition already holds (crm.lead.deal.auto.advance;
   back to 1.).
"""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import DEAL_NESTED_WRITE, DealEngineCollector, DealMove

# writes of these fields may start, change or end a deal's stay in a step
DEAL_TRACKED_FIELDS = {"stage_id", "deal_script_id", "type", "team_id", "user_id"}
# writes of these may mark a deal lost or restore it (Odoo: lost = archived at 0 %)
DEAL_LOST_FIELDS = {"active", "probability", "stage_id"}


class CrmLead(models.Model):
    _name = "crm.lead"
    # portal: the customer progress page; rating: the feedback request
    _inherit = [
        "crm.lead",
        "portal.mixin",
        "rating.mixin",
        "crm.lead.deal.activity",
        "crm.lead.deal.message",
        # the memo of the tracking messages' reply-to: crm_lead_deal_mail.py
        "crm.lead.deal.mail",
        "crm.lead.deal.portal",
        "crm.lead.deal.sla",
        "crm.lead.deal.gate",
        "crm.lead.deal.guide",
        # a step's condition met moves the deal on: crm_lead_deal_auto_advance.py
        "crm.lead.deal.auto.advance",
        "crm.lead.deal.exception",
        "crm.lead.deal.control",
        "crm.lead.deal.handoff",
        # versions of the process: crm_lead_deal_version.py
        "crm.lead.deal.version",
        # the deal's owner copied on its history: crm_lead_deal_owner.py
        "crm.lead.deal.owner",
    ]

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

    # the deadline cron (crm.lead.deal.sla) reads only due rows of open
    # deals, whatever the number of others
    _deal_sla_due_index = models.Index(
        "(deal_sla_next_check) WHERE deal_sla_next_check IS NOT NULL AND active"
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
        # the records ``self`` may hold (a copy's original) keep nothing here
        vals_list = self.browse()._deal_verified_references(vals_list)
        self._deal_sla_verify_writable(*vals_list)
        # rules fired while the deals are created only collect them: the engine
        # runs once their stays are logged (see base.automation._process)
        collector = DealEngineCollector()
        leads = super(
            CrmLead,
            self.with_context(deal_engine_collector=collector, deal_nested_write=DEAL_NESTED_WRITE),
        ).create(vals_list)
        leads.browse(
            lead.id
            for lead, vals in zip(leads, vals_list, strict=True)
            if vals.get("deal_script_id")
        )._deal_verify_script_team()
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
        vals = self._deal_verified_references([vals])[0]
        self._deal_sla_verify_writable(vals)
        if self and "stage_id" in vals and not self._deal_current_move().skip_gate:
            # the gate runs before anything is written: a refused batch
            # changes nothing, however the write came (form, kanban, RPC, import)
            self._deal_verify_gate(vals)
        # writes made while this one runs (engine, automation rules) leave the
        # auto-advance to this one: it runs once, when everything is written
        nested = self.with_context(deal_nested_write=DEAL_NESTED_WRITE)
        if not (self and (DEAL_TRACKED_FIELDS | DEAL_LOST_FIELDS).intersection(vals)):
            result = super(CrmLead, nested).write(vals)
            self._deal_board_notify()
            self._deal_auto_advance_written()
            return result
        if "deal_script_id" in vals:
            self._deal_verify_script_change(vals["deal_script_id"])
        before = {lead.id: (lead.stage_id, lead.deal_script_id, lead.deal_step_id) for lead in self}
        # lost / restored are changes of Odoo's won/lost status, not of stage
        lost_before = self._deal_lost_ids() if DEAL_LOST_FIELDS.intersection(vals) else None
        collector = DealEngineCollector()
        leads = nested.with_context(deal_engine_collector=collector)
        result = super(CrmLead, leads).write(vals)
        if vals.get("deal_script_id"):
            leads._deal_verify_script_team()
        leads._deal_update_stays(before, script_assigned_now="type" in vals)
        if lost_before is not None:
            leads._deal_handle_lost_status(lost_before)
        collector.run(leads)
        self._deal_board_notify()
        self._deal_auto_advance_written()
        return result

    # ------------------------------------------------------------
    # STAYS: the rows of the stage history (crm.deal.stage.log)
    # ------------------------------------------------------------

    def _deal_update_stays(self, before, script_assigned_now=False):
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
        # the history is written by the system: users only read it; closed in
        # one statement, before the next stays are inserted
        self.env["crm.deal.stage.log"].sudo()._close_open_stays(self.ids, date_out)
        # leaving a step ends its deadline: no escalation for a step left in time
        self._deal_sla_clear()

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
        now = fields.Datetime.now()
        # the history is written by the system: users only read it. A stay
        # never starts in the future (the last stage move is a client's field:
        # a date to come would hold off the step's deadline)
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
                        "date_in": date_in or min(lead.date_last_stage_update or now, now),
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
        # claimed with the deals' script activities the entry reads: one statement
        stays, activity_rows = (
            self.env["crm.deal.stage.log"]
            .sudo()
            ._claim_entries(self.ids, also=self._deal_script_activity_query())
        )
        stays._process_entries(self.env, activity_rows=activity_rows)

    # ------------------------------------------------------------
    # OVERRIDES of Odoo (kept here: a mixin after portal.mixin / rating.mixin
    # in _inherit would come after them in the MRO)
    # ------------------------------------------------------------

    def _write_multi(self, vals_list):
        # every change of a deal's owner reaches the database here, in
        # batches: its history and totals follow (crm.lead.deal.owner)
        super()._write_multi(vals_list)
        return self._deal_sync_owners(self._deal_owner_changed(vals_list))

    def _compute_access_url(self):
        for lead in self:
            lead.access_url = f"/my/deals/{lead.id}"

    @api.model
    def _get_thread_with_access(self, thread_id, *, hash=None, pid=None, token=None, **kwargs):
        # the deal's token opens the customer progress page only, never the
        # deal's chatter (portal.mixin would otherwise grant it)
        return super()._get_thread_with_access(thread_id, **kwargs)

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

    def _notify_get_reply_to(self, default=None, author_id=False):
        # The move's tracking message of each deal asks its reply-to at the
        # commit, deal by deal (an alias search each): the first one asks it
        # for all the deals the engine moved (_deal_prepare_tracking_messages),
        # remembered per deal, team and company until the tracking is posted
        if not self or not all(isinstance(id_, int) for id_ in self._ids):
            return super()._notify_get_reply_to(default=default, author_id=author_id)
        lang = self.env.lang
        return self._deal_mail_memoized(
            "reply_to",
            lambda lead: (lead.id, lead.team_id.id, lead.company_id.id, lang, default, author_id),
            # super() in a lambda: super(CrmLead, leads)
            lambda leads: super()._notify_get_reply_to(default=default, author_id=author_id),
        )

    def _mail_get_alias_domains(self, default_company=False):
        # as _notify_get_reply_to: each tracking message asks again
        if not self or not all(isinstance(id_, int) for id_ in self._ids):
            return super()._mail_get_alias_domains(default_company=default_company)
        company_id = (default_company or self.env.company).id
        domain_ids = self._deal_mail_memoized(
            "alias_domain",
            lambda lead: (lead.id, lead.company_id.id, company_id),
            lambda leads: {
                lead_id: domain.id
                for lead_id, domain in super()  # super(CrmLead, leads)
                ._mail_get_alias_domains(default_company=default_company)
                .items()
            },
        )
        Domain_ = self.env["mail.alias.domain"]
        return {lead_id: Domain_.browse(domain_id) for lead_id, domain_id in domain_ids.items()}

    def action_set_lost(self, **additional_values):
        """Odoo's Lost (its wizard and RPC alike) runs the lost-at step's clean-up.

        Odoo archives the deal, then writes the reason and the 0 %: the
        clean-up runs once, after both, in batch.
        """
        if additional_values.get("lost_reason_id"):
            additional_values["lost_reason_id"] = self._deal_verified_lost_reason(
                additional_values["lost_reason_id"]
            ).id
        deals = self.filtered("deal_script_id")
        if not deals:
            return super().action_set_lost(**additional_values)
        lost_before = deals._deal_before_set_lost(additional_values.get("lost_reason_id"))
        result = super(CrmLead, self._deal_move_context("lost")).action_set_lost(
            **additional_values
        )
        deals._deal_after_set_lost(lost_before)
        # Odoo returns None, which XML-RPC cannot send back to integrators
        return True if result is None else result

    def _merge_opportunity(self, user_id=False, team_id=False, auto_unlink=True, max_length=5):
        """Merging deals: the deals merged into the first one are deleted, and
        so are their script activities (those of their own steps; Odoo would
        move them onto the deal kept, where they stand for no step of its)."""
        if auto_unlink and len(self) > 1:
            head = self._sort_by_confidence_level(reverse=True)[:1]
            tails = self - head
            tails.check_access("read")
            # the engine's rows, deleted with their deal (as Odoo deletes it)
            tails.sudo().activity_ids.filtered(
                lambda act: act.deal_step_id or act.deal_script_activity_id
            ).unlink()
        return super()._merge_opportunity(
            user_id=user_id, team_id=team_id, auto_unlink=auto_unlink, max_length=max_length
        )

    def action_restore(self):
        result = super().action_restore()
        # Odoo returns None, which XML-RPC cannot send back to integrators
        return True if result is None else result
