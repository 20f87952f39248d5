from markupsafe import Markup

from odoo import api, fields, models


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
        self.ensure_one()
        self.lead_ids.action_deal_force_stage(self.stage_id.id, self.reason)
        # reload the pipeline or form underneath: the deals moved
        return {"type": "ir.actions.client", "tag": "soft_reload"}
