import re
from datetime import timedelta

from odoo import Command, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError
from odoo.fields import Domain

from ..tools import DealConfig, DealStepConfig, ensure_one
from .crm_deal_script_version import SLA_MAX_HOURS


class CrmDealScript(models.Model):
    """A deal script: the ordered process a deal follows through the pipeline."""

    _name = "crm.deal.script"
    _description = "Deal Script"
    _deal_verify_input = True
    # versions: crm_deal_script_version.py (their map and buttons:
    # crm_deal_script_version_ui.py); the process as a file:
    # crm_deal_script_definition.py
    _inherit = [
        "mail.thread",
        "crm.deal.config.mixin",
        "crm.deal.script.version.mixin",
        "crm.deal.script.version.ui.mixin",
        "crm.deal.script.definition.mixin",
    ]
    # what _script_id_by_team and _deal_config cache
    _deal_config_fields = frozenset(
        {"active", "team_ids", "is_template", "strict_order", "step_ids", "state"}
    )
    _order = "sequence, name, id"
    # its escalation manager works in its company
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(default=10)
    is_template = fields.Boolean(
        string="Template",
        readonly=True,
        help="Templates are not applied to deals: they are copied for a sales "
        "team with its own stages (see 'Create from template').",
    )
    company_id = fields.Many2one(
        "res.company",
        default=lambda self: self.env.company,
        index=True,
        tracking=True,
    )
    team_ids = fields.Many2many(
        "crm.team",
        "crm_deal_script_crm_team_rel",
        "script_id",
        "team_id",
        string="Sales Teams",
        help="New opportunities of these teams follow this script. A team can "
        "have only one active script.",
    )
    step_ids = fields.One2many("crm.deal.script.step", "script_id", string="Steps", copy=True)
    step_count = fields.Integer(compute="_compute_step_count")
    strict_order = fields.Boolean(
        default=True,
        help="Deals move forward one step at a time: no step can be skipped.",
    )
    note = fields.Html(string="Description")
    review_url = fields.Char(
        string="Review Page",
        help="Where happy customers are invited to leave a public review (e.g. your "
        "page on a review site). Empty: no review is requested.",
    )
    deal_count = fields.Integer(string="Deals", compute="_compute_deal_count")
    # order changes: where each type of change sends the deal back by default
    # (a step after the deal's current one is never used: it stays in its step)
    return_step_increase_id = fields.Many2one(
        "crm.deal.script.step",
        string="Return Step on Increase",
        copy=False,
        domain="[('script_id', '=', id)]",
        ondelete="set null",
    )
    return_step_decrease_id = fields.Many2one(
        "crm.deal.script.step",
        string="Return Step on Decrease",
        copy=False,
        domain="[('script_id', '=', id)]",
        ondelete="set null",
    )
    return_step_correction_id = fields.Many2one(
        "crm.deal.script.step",
        string="Return Step on Correction",
        copy=False,
        domain="[('script_id', '=', id)]",
        ondelete="set null",
    )
    return_step_other_id = fields.Many2one(
        "crm.deal.script.step",
        string="Return Step on Other Change",
        copy=False,
        domain="[('script_id', '=', id)]",
        ondelete="set null",
    )

    # ---- deadlines of the steps (SLA) and their escalation ----
    sla_working_time = fields.Boolean(
        string="Deadlines in Working Hours",
        default=True,
        help="Count the steps' deadlines in the working hours of the sales team's "
        "working schedule (else the company's), public holidays excluded. "
        "Otherwise deadlines run in calendar hours, nights and weekends included.",
    )
    sla_warning_percent = fields.Integer(
        string="Warn at (% of deadline)",
        default=80,
        help="When this share of a step's deadline is used, the deal is at risk and "
        "its salesperson gets an activity. 0: no warning.",
    )
    sla_escalation_hours = fields.Float(
        string="Escalate after (hours)",
        help="Hours after a step's deadline (counted like the deadline) after which "
        "a deal still in the step is escalated to the sales manager. 0: no escalation.",
    )
    sla_escalation_user_id = fields.Many2one(
        "res.users",
        string="Sales Manager",
        domain=[("share", "=", False)],
        check_company=True,
        help="Who gets an activity when a deal is escalated.",
    )

    _sla_warning_percent_range = models.Constraint(
        "CHECK(sla_warning_percent >= 0 AND sla_warning_percent < 100)",
        "The deadline warning is a share of the deadline, from 0 to 99%.",
    )
    _sla_escalation_hours_positive = models.Constraint(
        "CHECK(sla_escalation_hours >= 0)",
        "The escalation delay cannot be negative.",
    )

    @api.constrains("sla_escalation_hours", "sla_escalation_user_id")
    def _check_sla_escalation_user(self):
        for script in self:
            # not (0 <= x <= max): NaN is refused too
            if not 0 <= script.sla_escalation_hours <= SLA_MAX_HOURS:
                raise ValidationError(
                    self.env._(
                        "The escalation delay of the script %(script)s must be from 0 to "
                        "87,600 hours (ten years), not %(hours)s.",
                        script=script.display_name,
                        hours=script.sla_escalation_hours,
                    )
                )
            if script.sla_escalation_hours and not script.sla_escalation_user_id:
                raise ValidationError(
                    self.env._(
                        "The script %(script)s escalates stalled deals: choose the sales "
                        "manager who gets them.",
                        script=script.display_name,
                    )
                )

    @api.depends("step_ids")
    def _compute_step_count(self):
        for script in self:
            script.step_count = len(script.step_ids)

    def _compute_deal_count(self):
        counts = dict(
            self.env["crm.lead"]._read_group(
                [("deal_script_id", "in", self.ids)],
                ["deal_script_id"],
                ["__count"],
            )
        )
        for script in self:
            script.deal_count = counts.get(script, 0)

    # ------------------------------------------------------------
    # CONSTRAINTS
    # ------------------------------------------------------------

    @api.constrains("team_ids", "active", "is_template", "state")
    def _check_one_script_per_team(self):
        # the versions of a process share their teams: only the published one counts
        scripts = self.filtered(
            lambda s: s.active and not s.is_template and s.team_ids and s.state == "published"
        )
        if not scripts:
            return
        clashes = self.search(
            [
                ("id", "not in", scripts.ids),
                ("is_template", "=", False),
                ("state", "=", "published"),
                ("team_ids", "in", scripts.team_ids.ids),
            ]
        )
        for script in scripts:
            other = clashes.filtered(lambda s, sc=script: s.team_ids & sc.team_ids)[:1]
            if other:
                raise ValidationError(
                    self.env._(
                        "Sales team %(team)s already follows the script "
                        "%(script)s. A team can have only one active script: "
                        "remove the team from one of them or archive it.",
                        team=(other.team_ids & script.team_ids)[0].display_name,
                        script=other.display_name,
                    )
                )

    @api.constrains(
        "return_step_increase_id",
        "return_step_decrease_id",
        "return_step_correction_id",
        "return_step_other_id",
    )
    def _check_return_steps(self):
        for script in self:
            steps = (
                script.return_step_increase_id
                | script.return_step_decrease_id
                | script.return_step_correction_id
                | script.return_step_other_id
            )
            if steps - script.step_ids:
                raise ValidationError(
                    self.env._(
                        "The default return steps of the script %(script)s must be its own steps.",
                        script=script.display_name,
                    )
                )

    def _default_return_step(self, change_type):
        """The step a change of ``change_type`` returns to by default (may be empty)."""
        self.ensure_one()
        return self[f"return_step_{change_type}_id"]

    @api.constrains("team_ids")
    def _check_team_stages(self):
        self.step_ids._check_stage_in_script_teams()

    # ------------------------------------------------------------
    # CACHED STRUCTURE (cleared by crm.deal.config.mixin)
    # ------------------------------------------------------------

    @api.model
    @tools.ormcache()
    def _deal_config(self):
        """The scripts' structure as plain data (``DealConfig``), cached.

        Cleared when scripts, steps or check items change.
        """
        # shared by all users (cached): configuration, not what a reader sees
        scripts = (
            self.sudo()
            .with_context(active_test=False)
            .search_fetch([("is_template", "=", False)], ["strict_order"])
        )
        steps = (
            self.env["crm.deal.script.step"]
            .sudo()
            .search_fetch(
                [("script_id", "in", scripts.ids)],
                [
                    "script_id", "stage_id", "sequence", "require_activities_done",
                    "cancel_activities_on_exit", "back_step_ids", "server_action_ids",
                    "required_field_ids", "mail_template_id", "mail_mode", "is_feedback_step",
                    "sla_hours", "auto_advance_domain", "auto_advance_required",
                    "handoff_endpoint_id", "handoff_required",
                ],
                order="sequence, id",
            )
        )  # fmt: skip
        checks = (
            self.env["crm.deal.script.check"]
            .sudo()
            .search_fetch([("step_id", "in", steps.ids)], ["step_id", "required"])
        )
        checks_of = checks.grouped("step_id")
        step_ids_of = {script.id: [] for script in scripts}
        for step in steps:
            step_ids_of[step.script_id.id].append(step.id)
        field_names = {field.id: field.name for field in steps.required_field_ids}
        step_configs = {}
        for step in steps:
            step_checks = checks_of.get(step, checks.browse())
            step_configs[step.id] = DealStepConfig(
                id=step.id,
                script_id=step.script_id.id,
                stage_id=step.stage_id.id,
                index=step_ids_of[step.script_id.id].index(step.id),
                check_ids=tuple(step_checks.ids),
                required_check_ids=tuple(step_checks.filtered("required").ids),
                field_names=tuple(field_names[fid] for fid in step.required_field_ids.ids),
                back_step_ids=frozenset(step.back_step_ids.ids),
                require_activities_done=step.require_activities_done,
                cancel_activities_on_exit=step.cancel_activities_on_exit,
                mail_template_id=step.mail_template_id.id,
                mail_mode=step.mail_mode or "auto",
                is_feedback_step=step.is_feedback_step,
                sla_hours=step.sla_hours,
                server_action_ids=tuple(step.server_action_ids.ids),
                handoff_endpoint_id=step.handoff_endpoint_id.id,
                handoff_required=step.handoff_required,
                auto_advance_required=step.auto_advance_required
                and step.auto_advance_domain not in (False, "", "[]"),
            )
        return DealConfig(
            {script.id: (script.strict_order, tuple(step_ids_of[script.id])) for script in scripts},
            step_configs,
        )

    @api.model
    @tools.ormcache("self.env.lang")
    def _deal_step_names(self):
        """{step id: name} of the scripts' steps in the context's language,
        cached like ``_deal_config``: the notes of every move name the step."""
        steps = (
            self.env["crm.deal.script.step"]
            .sudo()
            .search_fetch([("script_id.is_template", "=", False)], ["name"])
        )
        return {step.id: step.name for step in steps}

    @api.model
    @tools.ormcache()
    def _script_id_by_team(self):
        """{team id: (script id, script company id)} of the active scripts.

        Cached: every lead of a team gets its default script from here, and a
        search per lead creation would cost Odoo's own flows a query each.
        """
        # shared by all users (cached): the team, not the reader, decides
        # drafts drive no deal; retired versions only keep the deals they have
        scripts = self.sudo().search(
            [("is_template", "=", False), ("state", "=", "published"), ("team_ids", "!=", False)]
        )
        return {
            team.id: (script.id, script.company_id.id)
            for script in scripts
            for team in script.team_ids
        }

    @api.constrains("review_url")
    def _check_review_url(self):
        # the address goes into an email to the customer: a web page only
        for script in self.filtered("review_url"):
            if not re.match(r"https?://[^\s/]", script.review_url, re.IGNORECASE):
                raise ValidationError(
                    self.env._(
                        "The review page of the script %(script)s must be a web address "
                        "starting with https:// (or http://).",
                        script=script.display_name,
                    )
                )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_used(self):
        used = self.filtered("deal_count")
        if used:
            raise UserError(
                self.env._(
                    "The script %(script)s is followed by %(count)s deal(s): "
                    "archive it instead of deleting it.",
                    script=used[0].display_name,
                    count=used[0].deal_count,
                )
            )
        # deals that left it (lost, archived, migrated to a newer version, moved
        # to another team) keep it in their history and order changes
        self.step_ids._deal_verify_no_history(self)

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    @api.model
    def action_create_from_template(self, team_id, template_id=False):
        """Copy a script template for a sales team, creating its stages.

        Stages are created for that team only, so no other pipeline changes.
        Access rights are the caller's: only sales administrators may create
        scripts and stages. Returns the id of the new script (callable over RPC with the team id).
        """
        self.check_access("create")
        team, template = self._template_for_team(team_id, template_id)
        script = template.copy(
            {
                "name": template.name,
                "is_template": False,
                # configured as a draft, published once complete (below)
                "state": "draft",
                "step_ids": [],
                "company_id": team.company_id.id or self.env.company.id,
            }
        )
        Stage = self.env["crm.stage"]
        # after the open stages the team's pipeline already shows (its own and
        # the shared ones), before its won stage: the deal steps follow lead
        # qualification and the existing stages keep their order
        pipeline = Stage.search(Domain("team_ids", "=", False) | Domain("team_ids", "in", team.ids))
        won_sequence = min(pipeline.filtered("is_won").mapped("sequence") or [float("inf")])
        base_sequence = max(
            [s.sequence for s in pipeline if not s.is_won and s.sequence < won_sequence] or [0]
        )
        step_map = script._copy_template_steps(template, team, base_sequence)
        for template_step, step in step_map.items():
            if template_step.back_step_ids:
                step.back_step_ids = [
                    Command.set([step_map[back].id for back in template_step.back_step_ids])
                ]
        script.write(
            {
                field: step_map[template[field]].id
                for field in (
                    "return_step_increase_id",
                    "return_step_decrease_id",
                    "return_step_correction_id",
                    "return_step_other_id",
                )
                if template[field] in step_map
            }
        )
        # bound to the team last: its constraints check the stages
        script.team_ids = [Command.set(team.ids)]
        script._deal_publish_created()
        if not Stage.search_count(
            Domain("is_won", "=", True)
            & (Domain("team_ids", "=", False) | Domain("team_ids", "in", team.ids))
        ):
            Stage.create(
                {
                    "name": self.env._("Won"),
                    "is_won": True,
                    "sequence": base_sequence + len(step_map) + 1,
                    "team_ids": [Command.set(team.ids)],
                }
            )
        return script.id

    @api.model
    def _template_for_team(self, team_id, template_id):
        """(team, template) of ``action_create_from_template``, checked."""
        Lead = self.env["crm.lead"]
        if not team_id:
            raise UserError(self.env._("Choose an existing sales team."))
        team = Lead._deal_verify_id(team_id, "crm.team", self.env._("sales team"))
        if not team.has_access("read"):
            # a team of a company the caller does not work in
            raise UserError(
                self.env._(
                    "The sales team %(team)s is not one of your companies' teams.", team=team.id
                )
            )
        if template_id:
            template = Lead._deal_verify_id(
                template_id, "crm.deal.script", self.env._("script template")
            )
            if not template.is_template:
                raise UserError(
                    self.env._(
                        "The script %(script)s is not a script template.",
                        script=template.display_name,
                    )
                )
        else:
            template = self.env.ref(
                "deal_stages.deal_script_template_b2b", raise_if_not_found=False
            )
        if not template or not template.is_template:
            raise UserError(self.env._("The deal script template is missing."))
        existing = self.search(
            [
                ("team_ids", "in", team.ids),
                ("is_template", "=", False),
                ("state", "=", "published"),
            ],
            limit=1,
        )
        if existing:
            raise UserError(
                self.env._(
                    "Sales team %(team)s already follows the script %(script)s.",
                    team=team.display_name,
                    script=existing.display_name,
                )
            )
        return team, template

    def _copy_template_steps(self, template, team, base_sequence):
        """Copy the steps of ``template`` into this script, each with a stage
        of its own for ``team`` (numbered from ``base_sequence``).

        :return: {template step: new step}
        """
        Stage = self.env["crm.stage"]
        script = self
        template_steps = template.step_ids.sorted(lambda s: (s.sequence, s.id))
        step_map = {}
        for index, template_step in enumerate(template_steps, start=1):
            stage = Stage.create(
                {
                    "name": template_step.name,
                    "sequence": base_sequence + index,
                    "team_ids": [Command.set(team.ids)],
                }
            )
            # the stage takes the translations of the step's name
            stage.update_field_translations(
                "name",
                {
                    tr["lang"]: tr["value"]
                    for tr in template_step.get_field_translations("name")[0]
                    if tr["value"]
                },
            )
            # the template's technical links (required fields, server actions)
            # are not readable by sales administrators, whose right to create
            # scripts was checked above
            step_map[template_step] = (
                template_step.sudo()
                .copy(
                    {
                        "script_id": script.id,
                        "stage_id": stage.id,
                        "template_step_id": template_step.id,
                    }
                )
                .with_env(self.env)
            )
        return step_map

    @api.model
    def _demo_advance_deals(self, plan):
        """Demo data: move deals to a step, with a history spread over past days.

        :param plan: [(lead id, step position)] — position 1 is the first step
        """
        leads = self.env["crm.lead"].browse([lead_id for lead_id, _position in plan])
        now = fields.Datetime.now()
        for lead, (_lead_id, position) in zip(leads, plan, strict=True):
            steps = lead.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
            for step in steps[1:position]:
                lead._deal_move_context("move", skip_gate=True).stage_id = step.stage_id
            # each stay lasted two to four days, the last one is still running;
            # a stay ends when the next begins (the history is a gap-free chain)
            stays = lead.deal_log_ids.sorted("id")
            lasted = [
                timedelta(days=2 + (lead.id + index) % 3, hours=lead.id % 7)
                for index in range(len(stays) - 1)
            ]
            moment = now - sum(lasted, timedelta(days=1 + lead.id % 3))
            for index, stay in enumerate(stays):
                values = {"date_in": moment}
                if stay.date_out:
                    moment += lasted[index]
                    values["date_out"] = moment
                stay.sudo().write(values)
            lead.date_last_stage_update = stays[-1:].date_in
        # automation rules are hooked only once the module is loaded: apply the
        # current steps' entry work explicitly
        leads._deal_run_entry_automation()

    def action_view_deals(self):
        ensure_one(self)
        action = self.env["ir.actions.act_window"]._for_xml_id("crm.crm_lead_opportunities")
        action["domain"] = [("deal_script_id", "=", self.id)]
        action["context"] = {"active_test": False}
        return action
