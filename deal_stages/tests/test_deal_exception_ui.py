from odoo.tests import HttpCase, tagged


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
