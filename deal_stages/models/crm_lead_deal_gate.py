"""Deal feature: the gate of each move (exit requirements, transition
policy), the checklist queries and the supervisor override."""

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.fields import Domain

from ..tools import DealGateError, ensure_one

# deals listed in full in a refusal; the others are counted
GATE_ERROR_DEALS = 20


class CrmLeadDealGate(models.AbstractModel):
    _name = "crm.lead.deal.gate"
    _description = "Deal: Gates and Checklist"

    # ------------------------------------------------------------
    # FIELDS: the checklist and its summary on the kanban card
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

    def _compute_deal_gate_summary(self):
        # kanban cards: the scripts' structure is cached, the ticks are read
        # in one query (none when the steps have no checklist)
        config = self.env["crm.deal.script"]._deal_config()
        step_of = {lead.id: config.steps.get(lead.deal_step_id.id) for lead in self if lead.id}
        deals = self.browse([lead_id for lead_id, step in step_of.items() if step])
        done_pairs = self.env["crm.deal.check"]._done_pairs(
            deals,
            self.env["crm.deal.script.check"].browse(
                [check_id for step in step_of.values() if step for check_id in step.check_ids]
            ),
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

    # ------------------------------------------------------------
    # GATE: exit requirements and transition policy of a move
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

    def _deal_verify_gate(self, vals):
        stage = self.env["crm.stage"].browse(vals["stage_id"] or [])
        self._deal_verify_pipeline(stage, vals)
        issues = self._deal_gate_issues(stage, vals)
        if issues:
            raise self._deal_gate_error(stage, issues)

    def _deal_verify_pipeline(self, stage, vals=None):
        """A deal following a script moves within its sales team's pipeline
        (the stages of no team or of its team), as Odoo's stage field offers:
        a stage of another team's pipeline would take it out of its script
        into steps it never reaches, whoever asks (no override either).

        :param vals: the values written with the move (a new team counts)
        """
        vals = vals or {}
        script_of, leads = self._deal_gate_scripts(stage, vals)
        # a stage of the deal's script is in its teams' pipeline (checked on
        # the step): the usual move costs no query here
        step_by_key = self.env["crm.deal.script"]._deal_config().step_by_key
        leads = leads.filtered(lambda lead: (script_of[lead.id].id, stage.id) not in step_by_key)
        if not (leads and stage.team_ids):
            return
        new_team = None
        if "team_id" in vals:
            # as Odoo stores it: an id, a record, or nothing (anything else)
            value = vals["team_id"]
            if isinstance(value, models.BaseModel):
                value = value.id
            is_id = isinstance(value, int) and not isinstance(value, bool)
            new_team = self.env["crm.team"].browse(value if is_id else [])
        foreign = leads.filtered(
            lambda lead: (
                (team := lead.team_id if new_team is None else new_team)
                and team not in stage.team_ids
            )
        )
        if foreign:
            raise UserError(
                self.env._(
                    "The stage %(stage)s is not in the pipeline of the sales team %(team)s of "
                    "the deal %(deal)s: choose a stage of its pipeline.",
                    stage=stage.display_name,
                    team=(foreign[0].team_id if new_team is None else new_team).display_name,
                    deal=foreign[0].display_name,
                )
            )

    def _deal_verify_script_change(self, script_id):
        """A deal's script may change only before it went past its first step,
        and only a supervisor takes a deal out of its process.

        Later, changing the process would rewrite its history; a deal without
        a script (script cleared, back to a lead) has no gate left at all:
        only members of the supervisor group may do either.
        """
        changing = self.filtered(lambda lead: lead.deal_script_id.id != (script_id or False))
        if (
            not changing
            # publishing a version migrates its deals (checked there)
            or self._deal_current_move().cause == "migrate"
            or self.env.user.has_group("deal_stages.group_deal_supervisor")
        ):
            return
        if not script_id:
            raise UserError(
                self.env._(
                    "The deal %(deal)s follows the script %(script)s: only a supervisor "
                    "can take it out of its process.",
                    deal=changing[0].display_name,
                    script=changing[0].deal_script_id.display_name,
                )
            )
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

    @api.readonly
    def get_deal_gate_info(self, stage_id):
        """What blocks moving these deals to ``stage_id``, for the web client.

        Returns the payload of the refusal dialog (empty ``deals``: allowed).
        A read: called over RPC it runs on a read-only cursor (a replica when
        the deployment has one), so nothing on its path may write.
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
        script_of, leads = self._deal_gate_scripts(stage, vals)
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

    def _deal_gate_scripts(self, stage, vals):
        """({lead id: script the deal follows after the write}, the deals the
        gate judges: scripted, saved, and moving to another stage)."""
        if "deal_script_id" in vals:
            new_script = self.env["crm.deal.script"].browse(vals["deal_script_id"] or [])
            script_of = dict.fromkeys(self.ids, new_script)
        else:
            script_of = {lead.id: lead.deal_script_id for lead in self}
        leads = self.filtered(
            lambda lead: script_of[lead.id] and lead.id and lead.stage_id != stage
        )
        return script_of, leads

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
        self._deal_checklist_issues(step_by_lead, step_config, issues, vals)
        self._deal_field_issues(step_by_lead, step_config, issues, vals)
        # conditions required to leave (e.g. the prepayment received)
        self._deal_condition_issues(step_by_lead, step_config, issues)
        # the hand-off to the accounting program / production, when required
        self._deal_handoff_issues(step_by_lead, step_config, issues)
        self._deal_activity_issues(step_by_lead, step_config, issues)
        return issues

    def _deal_checklist_issues(self, step_by_lead, step_config, issues, vals):
        """Adds to ``issues`` the required checklist items not ticked."""
        required_checks = self.env["crm.deal.script.check"].browse(
            [
                check_id
                for step in step_config.values()
                if step
                for check_id in step.required_check_ids
            ]
        )
        if required_checks:
            DealCheck = self.env["crm.deal.check"]
            done_pairs = DealCheck._done_pairs(self, required_checks, vals)
            deal_check_ids = DealCheck._ids_by_pair(self, required_checks)
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

    def _deal_field_issues(self, step_by_lead, step_config, issues, vals):
        """Adds to ``issues`` the required fields not set."""
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

    def _deal_activity_issues(self, step_by_lead, step_config, issues):
        """Adds to ``issues`` the open activities the steps created (when the
        step requires them done)."""
        steps = self.env["crm.deal.script.step"].concat(*step_by_lead.values())
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

    # ------------------------------------------------------------
    # CHECKLIST
    # ------------------------------------------------------------

    def action_deal_tick_check(self, check_id, done=True):
        """Tick (or untick) the item ``check_id`` of the deal's current step.

        :param check_id: a ``crm.deal.script.check`` id of the current step
        :return: the refreshed process guide of the deal
        """
        ensure_one(self)
        self.check_access("write")
        check = self.deal_step_id.check_ids.filtered(lambda c: c.id == check_id)
        if not check:
            raise UserError(self.env._("This item is not on the checklist of the deal's step."))
        deal_check = self.deal_check_ids.filtered(lambda c: c.check_id == check)
        if not deal_check:
            deal_check = self.env["crm.deal.check"]._create_for_deals(
                self, {self.id: self.deal_step_id}
            )
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
