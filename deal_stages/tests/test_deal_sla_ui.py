from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from odoo.addons.deal_stages.models.crm_lead_deal_sla import SLA_CLEARED


@tagged("post_install", "-at_install", "deal_stages")
class TestDealSlaUi(HttpCase):
    def test_pipeline_sla_marker_and_filters_tour(self):
        admin = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "SLA Tour Team", "user_id": admin.id})
        stage = self.env["crm.stage"].create({"name": "Tour step", "team_ids": team.ids})
        self.env["crm.deal.script"].create(
            {
                "name": "SLA tour process",
                "team_ids": team.ids,
                "step_ids": [Command.create({"stage_id": stage.id, "sla_hours": 8})],
            }
        )
        deals = self.env["crm.lead"].create(
            [
                {"name": name, "type": "opportunity", "team_id": team.id, "user_id": admin.id}
                for name in ("Stalled tour deal", "Risky tour deal", "Calm tour deal")
            ]
        )
        now = fields.Datetime.now()
        # the deadline fields are the engine's: set them as the cron would have
        deals[0].sudo().write(
            {
                "deal_sla_deadline": now - timedelta(hours=3),
                "deal_sla_warning_date": now - timedelta(hours=5),
                "deal_sla_state": "breached",
            }
        )
        deals[1].sudo().write(
            {
                "deal_sla_deadline": now + timedelta(hours=2),
                "deal_sla_warning_date": now - timedelta(hours=1),
                "deal_sla_state": "warning",
            }
        )
        deals[2].sudo().write(SLA_CLEARED)
        self.start_tour(
            "/odoo/action-crm.crm_lead_action_pipeline", "deal_stages_sla", login=admin.login
        )
