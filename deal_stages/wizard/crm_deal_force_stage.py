from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..tools import ensure_one


class CrmDealForceStage(models.TransientModel):
    """Supervisor override: move deals past unmet requirements, with a reason."""

    _name = "crm.deal.force.stage"
    _description = "Move Deals Past Their Requirements"

    lead_ids = fields.Many2many("crm.lead", string="Deals", required=True)
    stage_id = fields.Many2one(
        "crm.stage",
        string="Move To",
        required=True,
        domain="['|', ('team_ids', '=', False), ('team_ids', 'in', team_ids)]",
    )
    team_ids = fields.Many2many("crm.team", compute="_compute_team_ids")
    reason = fields.Text(
        required=True, help="Why the requirements are skipped: kept in the stage history."
    )
    missing_html = fields.Html(
        string="Requirements Not Met", compute="_compute_missing_html", sanitize=False
    )

    @api.model_create_multi
    def create(self, vals_list):
        # the ids come from the client: a wrong type or a missing record is
        # named, not left to the database (a server error)
        Lead = self.env["crm.lead"]
        for vals in vals_list:
            if vals.get("stage_id"):
                vals["stage_id"] = Lead._deal_verify_id(
                    vals["stage_id"], "crm.stage", self.env._("stage")
                ).id
            if vals.get("lead_ids"):
                leads = Lead.browse(list(dict.fromkeys(self._deal_command_ids(vals["lead_ids"]))))
                leads._deal_verify_records()
                vals["lead_ids"] = [Command.set(leads.ids)]
        return super().create(vals_list)

    @api.model
    def _deal_command_ids(self, commands):
        """The ids a client's x2many value links (set / link commands, or ids)."""
        if not isinstance(commands, (list, tuple)):
            raise UserError(self.env._("Give the deals as a list of ids."))
        ids = []
        for command in commands:
            if isinstance(command, (list, tuple)) and command and command[0] == Command.SET:
                ids += command[2] if len(command) == 3 and isinstance(command[2], list) else [None]
            elif isinstance(command, (list, tuple)) and command and command[0] == Command.LINK:
                ids.append(command[1] if len(command) > 1 else None)
            elif isinstance(command, (list, tuple)):
                raise UserError(self.env._("Give the deals as a list of ids."))
            else:
                ids.append(command)
        if not all(isinstance(id_, int) and not isinstance(id_, bool) for id_ in ids):
            raise UserError(self.env._("Give the deals as a list of ids."))
        return ids

    @api.depends("lead_ids")
    def _compute_team_ids(self):
        for wizard in self:
            wizard.team_ids = wizard.lead_ids.team_id

    @api.depends("lead_ids", "stage_id")
    def _compute_missing_html(self):
        for wizard in self:
            leads = wizard.lead_ids._origin
            if not (leads and wizard.stage_id):
                wizard.missing_html = False
                continue
            messages = leads._deal_missing_requirements(wizard.stage_id._origin)
            if not messages:
                wizard.missing_html = False
                continue
            wizard.missing_html = Markup("<ul>%s</ul>") % Markup().join(
                Markup("<li>%s</li>") % message for message in messages
            )

    def action_confirm(self):
        ensure_one(self)
        self.lead_ids.action_deal_force_stage(self.stage_id.id, self.reason)
        # reload the pipeline or form underneath: the deals moved
        return {"type": "ir.actions.client", "tag": "soft_reload"}
