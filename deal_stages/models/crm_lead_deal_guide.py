"""Deal feature: the process bar of the deal form and the next step preview."""

from odoo import api, fields, models


class CrmLeadDealGuide(models.AbstractModel):
    _name = "crm.lead.deal.guide"
    _description = "Deal: Process Guide"

    deal_guide = fields.Json(
        string="Process Guide",
        compute="_compute_deal_guide",
        help="Technical: steps, checklist, missing requirements and next step "
        "preview shown on the deal form.",
    )

    @api.depends_context("uid")
    def _compute_deal_guide(self):
        for lead in self:
            # a form being edited shows the guide of the saved deal
            origin = lead._origin
            lead.deal_guide = origin._deal_guide_data() if origin.deal_script_id else False

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

    def _deal_guide_step_of(self, steps):
        """A function giving, for a step of the deal's history, the step of
        ``steps`` (its current version) whose time it counts for: itself,
        the step a migration moved the deal to, or the step with the same
        key in an earlier version of the same process."""
        process = self.deal_script_id.process_id
        by_key = {step.step_key: step.id for step in steps}
        became = {}
        previous = None
        for log in self.sudo().deal_log_ids.sorted(lambda log: (log.date_in, log.id)):
            if (
                log.cause == "migrate"
                and previous
                and previous.step_id
                and previous.date_out == log.date_in
            ):
                became[previous.step_id.id] = log.step_id.id
            previous = log

        def step_of(step):
            step_id, seen = step.id, set()
            while step_id in became and step_id not in seen:
                seen.add(step_id)
                step_id = became[step_id]
            if step_id in by_key.values() or not step:
                return step_id
            if step.script_id.process_id == process:
                return by_key.get(step.step_key, step_id)
            return step_id

        return step_of

    def _deal_guide_data(self):
        """Everything the process bar of the deal form shows (JSON-ready)."""
        self.ensure_one()
        script = self.deal_script_id
        steps = script.step_ids
        current = self.deal_step_id
        now = fields.Datetime.now()
        hours = dict.fromkeys(steps.ids, 0.0)
        bar_step = self._deal_guide_step_of(steps)
        for log in self.sudo().deal_log_ids:
            step_id = bar_step(log.step_id)
            if step_id in hours:
                end = log.date_out or now
                hours[step_id] += max((end - log.date_in).total_seconds(), 0) / 3600
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
        # a lost or won deal has no next move: the form says so instead of
        # offering one (restoring a lost deal brings the guide back)
        closed = self.won_status if self.won_status in ("won", "lost") else False
        next_stage = not closed and self._deal_next_stage()
        missing = []
        if current and not closed:
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
            "next": self._deal_next_step_preview(current._next_step())
            if current and not closed
            else False,
            "closed": closed,
            "can_write": self.has_access("write") and not closed,
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
            user, _warning = template._determine_assignee(self)
            deadline = template._determine_deadline(self, user, today, {})
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
