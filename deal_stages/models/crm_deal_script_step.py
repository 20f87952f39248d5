import re

from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.fields import Domain

from ..tools import parse_condition
from .crm_deal_script_version import COSMETIC_STEP_FIELDS, SLA_MAX_HOURS, check_fixed


class CrmDealScriptStep(models.Model):
    """One step of a deal script, bound to a pipeline stage."""

    _name = "crm.deal.script.step"
    _description = "Deal Script Step"
    _deal_verify_input = True
    # the scripts' structure is cached (crm.deal.script._deal_config,
    # _deal_step_names, _deal_auto_advance_step_ids): any change clears it
    _inherit = ["crm.deal.config.mixin"]
    _order = "script_id, sequence, id"
    # a step of one company hands off to that company's endpoints only
    _check_company_auto = True

    script_id = fields.Many2one("crm.deal.script", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="script_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    step_key = fields.Char(
        help="Stable name of the step across the versions of the process: a deal "
        "migrated to a new version goes to the step with the same key, and the "
        "reports compare a step's times across versions by it. Set from the "
        "name when empty.",
    )
    stage_id = fields.Many2one(
        "crm.stage",
        ondelete="restrict",
        index=True,
        help="The pipeline stage this step stands for. Deals entering the stage enter the step.",
    )
    name = fields.Char(
        compute="_compute_name",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
        translate=True,
    )
    activity_template_ids = fields.One2many(
        "crm.deal.script.activity", "step_id", string="Activities", copy=True
    )
    cancel_activities_on_exit = fields.Boolean(
        string="Cancel Open Activities on Exit",
        default=True,
        help="When a deal leaves this step, the activities this step created and "
        "that are still open are cancelled. Activities created by hand stay.",
    )
    check_ids = fields.One2many(
        "crm.deal.script.check",
        "step_id",
        string="Checklist",
        copy=True,
        help="Items the salesperson ticks on the deal before it may leave this step.",
    )
    # requirements and messages (gates, customer messages, SLA) are added by
    # their own features; they are declared here so the public contract stays
    # in one place
    required_field_ids = fields.Many2many(
        "ir.model.fields",
        "crm_deal_script_step_required_field_rel",
        "step_id",
        "field_id",
        string="Required Fields",
        domain=[("model", "=", "crm.lead"), ("store", "=", True)],
        ondelete="cascade",
    )
    require_activities_done = fields.Boolean(
        string="Activities Must Be Done",
        help="The deal may leave this step only when the activities this step created are done.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="Customer Message",
        domain=[("model", "=", "crm.lead")],
        ondelete="set null",
    )
    mail_mode = fields.Selection(
        [("auto", "Send automatically"), ("propose", "Propose to the salesperson")],
        string="Sending",
        default="auto",
        required=True,
    )
    server_action_ids = fields.Many2many(
        "ir.actions.server",
        "crm_deal_script_step_server_action_rel",
        "step_id",
        "action_id",
        string="Server Actions",
        domain=[("model_name", "=", "crm.lead")],
        help="Extra server actions run on the deals entering this step.",
    )
    sla_hours = fields.Float(
        string="Deadline (hours)",
        help="How long a deal may stay in this step. 0 means no deadline.",
    )
    back_step_ids = fields.Many2many(
        "crm.deal.script.step",
        "crm_deal_script_step_back_rel",
        "step_id",
        "back_step_id",
        string="Return Steps",
        copy=False,
        help="Earlier steps a deal may be sent back to from this step.",
    )
    is_feedback_step = fields.Boolean(
        string="Feedback Step",
        help="Entering this step asks the customer for feedback.",
    )
    auto_advance_domain = fields.Char(
        string="Auto-advance Condition",
        help="When deals in this step match this condition and the step's "
        "requirements are met, they move to the next step by themselves.",
    )
    auto_advance_label = fields.Char(
        string="Condition Name",
        translate=True,
        help="How the stage history names the automation that moved the deal, "
        "e.g. 'Quotation confirmed'. Empty: the condition itself is shown.",
    )
    auto_advance_required = fields.Boolean(
        string="Required to Leave",
        help="The condition is also part of the step's requirements: a deal may "
        "not be moved on by hand before it holds (a supervisor may override). "
        "For conditions that documents prove, such as a payment received.",
    )
    # hand-off to the accounting program / production (crm.deal.handoff)
    handoff_endpoint_id = fields.Many2one(
        "crm.deal.handoff.endpoint",
        string="Hand-off Endpoint",
        ondelete="restrict",
        check_company=True,
        help="Entering the step hands the order off to this endpoint: a signed "
        "request, retried until the receiver has it.",
    )
    handoff_required = fields.Boolean(
        string="Hand-off Required to Leave",
        help="A deal may leave the step only once the receiver acknowledged its "
        "hand-off (a supervisor may override).",
    )
    template_step_id = fields.Many2one(
        "crm.deal.script.step",
        copy=False,
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="Technical: the template step this step was created from, so that "
        "add-ons can update the steps created from a template.",
    )
    # refusal (lost) at this step
    lost_reason_required = fields.Boolean(
        help="A deal can be marked lost at this step only with a lost reason.",
    )
    lost_mail_template_id = fields.Many2one(
        "mail.template",
        string="Refusal Message",
        domain=[("model", "=", "crm.lead")],
        ondelete="set null",
        help="Message to the customer when a deal is lost at this step, sent or "
        "proposed like the step's customer message (see Sending).",
    )
    deal_count = fields.Integer(string="Deals", compute="_compute_deal_count")

    _step_key_unique_per_script = models.Constraint(
        "UNIQUE(script_id, step_key)",
        "Two steps of a script cannot have the same key.",
    )
    _stage_unique_per_script = models.Constraint(
        "UNIQUE(script_id, stage_id)",
        "A stage can be used by only one step of a script.",
    )
    _sla_hours_positive = models.Constraint(
        "CHECK(sla_hours >= 0)",
        "The deadline of a step cannot be negative.",
    )

    # ------------------------------------------------------------
    # COMPUTES
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        # published means fixed (crm.deal.script.version.mixin)
        check_fixed(self, "create", vals_list)
        steps = super().create(vals_list)
        # and where the values put them (a caller's default_script_id too)
        check_fixed(steps, "create")
        steps.filtered(lambda step: not step.step_key)._deal_fill_step_keys()
        return steps

    def write(self, vals):
        check_fixed(self, "write", [vals], COSMETIC_STEP_FIELDS)
        result = super().write(vals)
        if "step_key" in vals and not vals["step_key"]:
            self._deal_fill_step_keys()
        return result

    def unlink(self):
        check_fixed(self, "unlink")
        return super().unlink()

    def _deal_fill_step_keys(self):
        """Give the steps ``self`` a key made from their name, unique in their script."""
        taken = {
            (step.script_id.id, step.step_key)
            for step in self.script_id.step_ids
            if step.step_key and step not in self
        }
        for step in self.sorted(lambda s: (s.script_id.id, s.sequence, s.id)):
            base = step._deal_key_from_name(step.with_context(lang="en_US").name or "step")
            key, index = base, 1
            while (step.script_id.id, key) in taken:
                index += 1
                key = f"{base}_{index}"
            taken.add((step.script_id.id, key))
            # new steps are on drafts (or created by the superuser): writable
            step.write({"step_key": key})

    @api.model
    def _deal_key_from_name(self, name):
        return re.sub(r"\W+", "_", name.strip().lower()).strip("_") or "step"

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=""):
        # step names are cached per language (crm.deal.script._deal_step_names)
        result = super()._update_field_translations(
            field_name, translations, digest=digest, source_lang=source_lang
        )
        self.env.registry.clear_cache()
        return result

    @api.depends("stage_id")
    def _compute_name(self):
        for step in self:
            if step.stage_id and not step.name:
                step.name = step.stage_id.name

    def _compute_deal_count(self):
        counts = dict(
            self.env["crm.lead"]
            .with_context(active_test=False)
            ._read_group([("deal_step_id", "in", self.ids)], ["deal_step_id"], ["__count"])
        )
        for step in self:
            step.deal_count = counts.get(step, 0)

    @api.depends("script_id", "name")
    def _compute_display_name(self):
        for step in self:
            step.display_name = step.name or ""

    # ------------------------------------------------------------
    # CONSTRAINTS
    # ------------------------------------------------------------

    @api.constrains("sla_hours")
    def _check_sla_hours_range(self):
        for step in self:
            # not (0 <= x <= max): NaN is refused too
            if not 0 <= step.sla_hours <= SLA_MAX_HOURS:
                raise ValidationError(
                    self.env._(
                        "The deadline of the step %(step)s must be from 0 to 87,600 hours "
                        "(ten years), not %(hours)s.",
                        step=step.display_name,
                        hours=step.sla_hours,
                    )
                )

    @api.constrains("stage_id", "script_id")
    def _check_stage_in_script_teams(self):
        for step in self:
            if not step.stage_id:
                if not step.script_id.is_template:
                    raise ValidationError(
                        self.env._("The step %(step)s needs a stage.", step=step.name)
                    )
                continue
            stage_teams = step.stage_id.team_ids
            missing = step.script_id.team_ids - stage_teams if stage_teams else False
            if missing:
                raise ValidationError(
                    self.env._(
                        "The stage %(stage)s of step %(step)s is not in the pipeline "
                        "of sales team %(team)s. Choose a stage of the script's teams.",
                        stage=step.stage_id.display_name,
                        step=step.name,
                        team=missing[0].display_name,
                    )
                )

    @api.constrains("required_field_ids")
    def _check_required_fields_of_deals(self):
        # the gate checks fields of the deal: another model's field (the domain
        # is the form's only) would be a requirement nobody can meet or see
        for step in self:
            foreign = step.required_field_ids.filtered(
                lambda field: field.model != "crm.lead" or not field.store
            )
            if foreign:
                raise ValidationError(
                    self.env._(
                        "The required fields of the step %(step)s must be stored fields of "
                        "the deal (%(field)s is not).",
                        step=step.name,
                        field=f"{foreign[0].model}.{foreign[0].name}",
                    )
                )

    @api.constrains("back_step_ids", "script_id")
    def _check_back_steps(self):
        for step in self:
            if step.back_step_ids - step.script_id.step_ids:
                raise ValidationError(
                    self.env._(
                        "The return steps of %(step)s must belong to the same script.",
                        step=step.name,
                    )
                )

    @api.constrains("server_action_ids")
    def _check_server_actions_model(self):
        for step in self:
            actions = step.sudo().server_action_ids
            # a step runs only the server actions its configuring user may
            # use: sales administrators cannot read them (code, webhooks,
            # other models), administrators (Settings) attach them
            if actions and not self.env.su and not actions.sudo(False).has_access("read"):
                raise AccessError(
                    self.env._(
                        "Only administrators (Settings) can attach server actions to a step: "
                        "you may not use the action %(action)s.",
                        action=actions[:1].name,
                    )
                )
            foreign = actions.filtered(lambda action: action.model_name != "crm.lead")
            if foreign:
                raise ValidationError(
                    self.env._(
                        "The server action %(action)s of the step %(step)s works on %(model)s: "
                        "a step runs only actions on deals.",
                        action=foreign[0].name,
                        step=step.name,
                        model=foreign[0].model_name,
                    )
                )

    @api.constrains("mail_template_id", "lost_mail_template_id")
    def _check_templates_model(self):
        for step in self:
            for template in step.mail_template_id | step.lost_mail_template_id:
                if template.sudo().model != "crm.lead":
                    raise ValidationError(
                        self.env._(
                            "The message %(template)s of the step %(step)s is a template of "
                            "%(model)s: a step sends only templates of deals.",
                            template=template.sudo().name,
                            step=step.name,
                            model=template.sudo().model,
                        )
                    )

    @api.constrains("auto_advance_domain")
    def _check_auto_advance_domain(self):
        for step in self.filtered("auto_advance_domain"):
            try:
                step._deal_auto_advance_condition().validate(step.env["crm.lead"])
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The auto-advance condition of the step %(step)s is not a valid "
                        "condition on deals: %(error)s",
                        step=step.name,
                        error=error,
                    )
                ) from error

    @api.ondelete(at_uninstall=False)
    def _unlink_except_deals_in_step(self):
        busy = self.filtered("deal_count")
        if busy:
            raise UserError(
                self.env._(
                    "%(count)s deal(s) are currently in the step %(step)s. Archive "
                    "those deals or move them to another stage first.",
                    count=busy[0].deal_count,
                    step=busy[0].name,
                )
            )
        self._deal_verify_no_history()

    def _deal_verify_no_history(self, scripts=None):
        """Refuse to delete steps (or ``scripts``) a deal's history names.

        Any deal, lost or archived included: its stays, checklist and order
        changes would lose their step (an order change's even fails on the
        foreign key), and a lost deal restored would stand outside any process.
        """
        # sudo: counts only, the history is the system's
        domains = [
            (
                "crm.deal.stage.log",
                ["|", ("step_id", "in", self.ids), ("from_step_id", "in", self.ids)],
            ),
            (
                "crm.deal.order.change",
                ["|", ("return_step_id", "in", self.ids), ("from_step_id", "in", self.ids)],
            ),
            ("crm.deal.check", [("step_id", "in", self.ids)]),
        ]
        if scripts:
            domains.insert(0, ("crm.deal.stage.log", [("script_id", "in", scripts.ids)]))
        for model, domain in domains:
            used = (
                self.env[model]
                .sudo()
                .with_context(active_test=False)
                .search_fetch(domain, ["lead_id"], limit=1)
            )
            if used:
                target = scripts[:1] if scripts else self[:1]
                raise UserError(
                    self.env._(
                        "%(what)s is part of the history of the deal %(deal)s (and perhaps "
                        "others, lost or archived ones included): it cannot be deleted. "
                        "Archive it instead.",
                        what=self.env._("The script %(name)s", name=target.display_name)
                        if scripts
                        else self.env._("The step %(name)s", name=target.display_name),
                        deal=used.lead_id.sudo().display_name,
                    )
                )

    # ------------------------------------------------------------
    # TOOLS
    # ------------------------------------------------------------

    def _next_step(self):
        """The step after ``self`` in its script (empty at the last step)."""
        self.ensure_one()
        steps = self.script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        index = list(steps).index(self)
        return steps[index + 1] if index + 1 < len(steps) else self.browse()

    # ------------------------------------------------------------
    # AUTO-ADVANCE
    # ------------------------------------------------------------

    @api.model
    @tools.ormcache()
    def _deal_auto_advance_step_ids(self):
        """Ids of the scripts' steps that have an auto-advance condition.

        Cached: every write of a deal asks it, and most databases have none,
        so deals are written without any extra query.
        """
        # shared by all users (cached): the configuration, not the reader, decides
        steps = self.sudo().search(
            [
                ("auto_advance_domain", "not in", [False, "", "[]"]),
                ("script_id.is_template", "=", False),
            ]
        )
        return frozenset(steps.ids)

    def _deal_auto_advance_condition(self):
        """The step's auto-advance condition as a ``Domain`` on ``crm.lead``."""
        self.ensure_one()
        # data, not code (see parse_condition): never safe_eval with records
        return Domain(
            parse_condition(self.auto_advance_domain, self.env.uid, fields.Date.context_today(self))
        )

    @api.model
    def _deal_domain_problem(self, text):
        """Why ``text`` is not a valid auto-advance condition (None if it is)."""
        try:
            self.new({"auto_advance_domain": text})._deal_auto_advance_condition().validate(
                self.env["crm.lead"]
            )
        except Exception as error:  # noqa: BLE001 - any error makes the condition invalid
            return str(error)
        return None

    def _deal_auto_advance_note(self):
        """What the stage history says moved the deal."""
        self.ensure_one()
        return self.env._(
            "Condition met: %(condition)s",
            condition=self.auto_advance_label or self.auto_advance_domain,
        )

    # ------------------------------------------------------------
    # BRIDGE ADD-ONS (their install / uninstall hooks)
    # ------------------------------------------------------------

    @api.model
    def _deal_bridge_install(self, proven_checks):
        """Give the steps copied from the template the conditions a bridge
        add-on just set on the template's steps (in its data file).

        Only copies without a condition of their own; the checklist item the
        condition proves becomes optional on them, as on the template (the
        template's condition is then required to leave the step instead).

        :param proven_checks: {template step xml id: xml id of the checklist
            item the documents now prove, or None}
        """
        for template_step, check in self._deal_bridge_template_steps(proven_checks).items():
            steps = self.search(
                [
                    ("template_step_id", "=", template_step.id),
                    ("auto_advance_domain", "in", [False, "", "[]"]),
                ]
            )
            if not steps:
                continue
            steps.write(
                {
                    "auto_advance_domain": template_step.auto_advance_domain,
                    "auto_advance_label": template_step.auto_advance_label,
                    "auto_advance_required": template_step.auto_advance_required,
                }
            )
            # the label in every language the template has it in
            translations = {
                tr["lang"]: tr["value"]
                for tr in template_step.get_field_translations("auto_advance_label")[0]
                if tr["value"]
            }
            for step in steps:
                step.update_field_translations("auto_advance_label", translations)
            if check:
                steps.check_ids.filtered(lambda item, c=check: item.name == c.name).required = False

    @api.model
    def _deal_bridge_uninstall(self, field_names, proven_checks):
        """Remove the conditions that use a bridge add-on's fields (invalid
        once it is gone) and make the items they proved required again.

        :param field_names: the ``crm.lead`` fields the add-on brings
        :param proven_checks: as for ``_deal_bridge_install``
        """
        Step = self.with_context(active_test=False)
        Step.search(
            Domain.OR(Domain("auto_advance_domain", "ilike", name) for name in field_names)
        ).write({"auto_advance_domain": False, "auto_advance_required": False})
        for template_step, check in self._deal_bridge_template_steps(proven_checks).items():
            if check:
                steps = Step.search([("template_step_id", "=", template_step.id)])
                copies = steps.check_ids.filtered(lambda item, c=check: item.name == c.name)
                (check | copies).required = True

    @api.model
    def _deal_bridge_template_steps(self, proven_checks):
        """{template step: its proven checklist item (or an empty recordset)}"""
        result = {}
        for step_xmlid, check_xmlid in proven_checks.items():
            step = self.env.ref(step_xmlid, raise_if_not_found=False)
            if step:
                check = check_xmlid and self.env.ref(check_xmlid, raise_if_not_found=False)
                result[step] = check or self.env["crm.deal.script.check"]
        return result
