from odoo import Command
from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "deal_stages")
class TestDealStagesUi(HttpCase):
    def test_manager_creates_script_tour(self):
        manager = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Tour Team"})
        self.start_tour("/odoo", "deal_stages_script_create", login=manager.login)
        script = self.env["crm.deal.script"].search([("name", "=", "Tour B2B process")])
        self.assertTrue(script, "the tour should have saved the new script")
        self.assertEqual(script.team_ids, team)


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionUi(HttpCase):
    def test_new_version_gate_publish_migrate_tour(self):
        admin = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Version Tour Team", "user_id": admin.id})
        contract, invoicing = self.env["crm.stage"].create(
            [
                {"name": "Tour Contract", "sequence": 1, "team_ids": team.ids},
                {"name": "Tour Invoicing", "sequence": 2, "team_ids": team.ids},
            ]
        )
        script = self.env["crm.deal.script"].create(
            {
                "name": "Version tour process",
                "team_ids": team.ids,
                "step_ids": [
                    Command.create({"sequence": 1, "stage_id": contract.id}),
                    Command.create(
                        {
                            "sequence": 2,
                            "stage_id": invoicing.id,
                            "sla_hours": 8,
                            "check_ids": [Command.create({"name": "Invoice sent"})],
                        }
                    ),
                ],
            }
        )
        first, second = script.step_ids
        second.back_step_ids = first
        deal = self.env["crm.lead"].create(
            {"name": "Tour versioned deal", "type": "opportunity", "team_id": team.id}
        )
        self.start_tour(f"/odoo/crm.deal.script/{script.id}", "deal_stages_version", login="admin")
        new = self.env["crm.deal.script"].search([("previous_version_id", "=", script.id)])
        self.assertEqual((script.state, new.state, new.version), ("retired", "published", 2))
        self.assertTrue(
            new.step_ids.filtered(lambda s: s.step_key == "tour_contract").require_activities_done
        )
        self.assertFalse(first.require_activities_done, "version 1 unchanged")
        self.assertEqual(deal.deal_script_id, new)
        self.assertEqual(deal.deal_log_ids.sorted("id")[-1:].cause, "migrate")
