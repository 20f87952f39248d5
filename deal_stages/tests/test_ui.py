from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from odoo.addons.deal_stages.models.crm_lead import SLA_CLEARED


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


@tagged("post_install", "-at_install", "deal_stages")
class TestDealExceptionsUi(HttpCase):
    def test_lost_restore_order_change_tour(self):
        """Through the deal form: Lost (reason required), Restore, Order Change."""
        team = self.env["crm.team"].create({"name": "Tour Exceptions Team"})
        script = self.env["crm.deal.script"].browse(
            self.env["crm.deal.script"].action_create_from_template(team.id)
        )
        steps = script.step_ids.sorted("sequence")
        shipment = steps.filtered(lambda s: s.name == "Shipment")
        invoicing = steps.filtered(lambda s: s.name == "Invoicing")
        self.assertTrue(shipment.lost_reason_required)
        self.env["crm.lost.reason"].create({"name": "Tour reason"})
        deal = self.env["crm.lead"].create(
            {
                "name": "Tour deal",
                "type": "opportunity",
                "team_id": team.id,
                "user_id": self.env.ref("base.user_admin").id,
                "expected_revenue": 1000,
            }
        )
        deal._deal_move_context("move", skip_gate=True).write({"stage_id": shipment.stage_id.id})
        self.start_tour(f"/odoo/crm.lead/{deal.id}", "deal_stages_exceptions", login="admin")
        self.assertTrue(deal.active)
        self.assertEqual(deal.deal_step_id, invoicing)
        self.assertEqual(deal.expected_revenue, 1500)
        self.assertEqual(deal.deal_change_ids.name, "Change 1")
        self.assertEqual(deal.deal_change_ids.description, "Ten more chairs")
        self.assertEqual(
            deal.deal_log_ids.sorted("id").mapped("cause")[-3:], ["lost", "restore", "change"]
        )
        self.assertEqual(
            deal.deal_log_ids.filtered(lambda log: log.cause == "lost").note, "Tour reason"
        )


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
