from odoo import api, fields, models

from ..tools import ensure_one


class CrmTeam(models.Model):
    _inherit = "crm.team"

    deal_script_ids = fields.Many2many(
        "crm.deal.script",
        "crm_deal_script_crm_team_rel",
        "team_id",
        "script_id",
        string="Deal Scripts",
        domain=[("is_template", "=", False)],
    )
    deal_script_id = fields.Many2one(
        "crm.deal.script",
        compute="_compute_deal_script_id",
        help="The script new opportunities of this team follow.",
    )
    resource_calendar_id = fields.Many2one(
        "resource.calendar",
        string="Working Hours",
        domain="[('company_id', 'in', [company_id, False])]",
        help="The working schedule the deadlines of the team's deal steps count in. "
        "Empty: the company's.",
    )

    @api.depends("deal_script_ids.state")
    def _compute_deal_script_id(self):
        # the versions of a process share their teams: new deals follow the published one
        for team in self:
            team.deal_script_id = team.deal_script_ids.filtered(
                lambda s: not s.is_template and s.state == "published"
            )[:1]

    def action_deal_create_script(self):
        """Give this team the B2B deal script, with its own stages."""
        ensure_one(self)
        script_id = self.env["crm.deal.script"].action_create_from_template(self.id)
        return {
            "type": "ir.actions.act_window",
            "res_model": "crm.deal.script",
            "res_id": script_id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    @api.model
    def _deal_led_teams_domain(self, team_field, operator, value):
        """Domain on ``team_field`` (a team column copied on the history) for
        the search of its team leader: ``team IN (SELECT id FROM crm_team
        WHERE user_id ...)``.

        The record rules "deals of the teams I lead" compare it so: PostgreSQL
        estimates the rows of the teams led and reads a million rows in their
        index order, where the join of a dotted path ``team.user_id`` made it
        sort them.
        """
        if operator not in ("in", "not in"):
            return NotImplemented
        # every team (archived ones too), whatever the reader may see of them:
        # as the dotted path in a record rule
        teams = self.sudo().with_context(active_test=False)._search([("user_id", "in", value)])
        return [(team_field, operator, teams)]
