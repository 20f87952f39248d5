from odoo import api, fields, models

from ..tools import ensure_one


class CrmDealScriptVersionUi(models.AbstractModel):
    """What the script form shows of its versions (mixed into
    ``crm.deal.script``): the process map and the version buttons."""

    _name = "crm.deal.script.version.ui.mixin"
    _description = "Deal Script Versions: Map and Buttons"

    process_map = fields.Json(
        compute="_compute_process_map",
        help="The process as a diagram: its steps in order, with their gates, "
        "deadlines, conditions and return paths.",
    )

    @api.depends("step_ids", "state", "version")
    @api.depends_context("lang")
    def _compute_process_map(self):
        for script in self:
            script.process_map = script._deal_process_map()

    def _deal_process_map(self):
        """The data the process map draws, in the reader's language."""
        if not self:
            return False
        self.ensure_one()
        Lead = self.env["crm.lead"]
        # the steps' technical links (required fields) are configuration the
        # reader may see in the map but not read as records
        script = self.sudo()
        steps = script.step_ids.sorted(lambda s: (s.sequence, s.id))
        states = dict(self._fields["state"]._description_selection(self.env))
        return {
            "id": self.id if isinstance(self.id, int) else False,
            "name": script.name,
            "version": script.version,
            "state": script.state,
            "state_label": states.get(script.state, ""),
            "strict_order": script.strict_order,
            "steps": [
                {
                    "id": step.id if isinstance(step.id, int) else False,
                    "key": step.step_key or "",
                    "name": step.name or "",
                    "stage": step.stage_id.name or "",
                    "sla_hours": step.sla_hours,
                    "checks": [
                        {"name": check.name, "required": check.required}
                        for check in step.check_ids.sorted(lambda c: (c.sequence, c.id))
                    ],
                    "fields": [
                        Lead._fields[field.name]._description_string(self.env)
                        for field in step.required_field_ids
                        if field.name in Lead._fields
                    ],
                    "activities_done": step.require_activities_done,
                    "activities": [
                        template.display_name
                        for template in step.activity_template_ids
                        if template.trigger == "enter"
                    ],
                    "condition": (step.auto_advance_label or step.auto_advance_domain or "")
                    if step.auto_advance_domain not in (False, "", "[]")
                    else "",
                    "condition_required": step.auto_advance_required,
                    "back": [back.step_key for back in step.back_step_ids],
                    "back_names": [back.name for back in step.back_step_ids],
                }
                for step in steps
            ],
        }

    def action_new_version_open(self):
        """The "New Version" button: the new draft, in its form."""
        draft_id = self.action_new_version()
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.deal.script",
            "res_id": draft_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_open_publish_wizard(self):
        """The "Publish" button: the dry run of the in-flight deals first."""
        self._deal_check_manager()
        ensure_one(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Publish %(script)s", script=self.display_name),
            "res_model": "crm.deal.script.publish",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            # two maps side by side and the dry run's columns need the room
            "context": {"default_script_id": self.id, "dialog_size": "extra-large"},
        }

    def action_view_versions(self):
        ensure_one(self)
        action = {
            "type": "ir.actions.act_window",
            "res_model": "crm.deal.script",
            "view_mode": "list,form",
            "domain": [("process_id", "=", self.process_id.id)],
            "context": {"active_test": False},
        }
        action["name"] = self.env._("Versions")
        return action
