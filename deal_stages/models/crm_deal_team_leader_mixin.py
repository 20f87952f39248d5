from odoo import api, fields, models


class CrmDealTeamLeaderMixin(models.AbstractModel):
    """The leader of the deal's sales team now, on rows that copy the deal's
    team (``lead_team_id``: the stage history and its analyses): the record
    rules of team leaders search it as a subquery of the teams they lead
    (``crm.team._deal_led_teams_domain``), not as a join of the teams."""

    _name = "crm.deal.team.leader.mixin"
    _description = "Deal History: Current Team Leader"

    lead_team_id = fields.Many2one("crm.team", string="Current Sales Team")
    lead_team_leader_id = fields.Many2one(
        "res.users",
        string="Current Team Leader",
        compute="_compute_lead_team_leader_id",
        search="_search_lead_team_leader_id",
        help="The leader of the deal's sales team now.",
    )

    @api.depends("lead_team_id.user_id")
    def _compute_lead_team_leader_id(self):
        for record in self:
            record.lead_team_leader_id = record.lead_team_id.user_id

    def _search_lead_team_leader_id(self, operator, value):
        return self.env["crm.team"]._deal_led_teams_domain("lead_team_id", operator, value)
