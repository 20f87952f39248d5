from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo.tests import tagged, users

from .common import FRIDAY_15, DealSlaCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealControlBoard(DealSlaCommon):
    """Deals at risk, days in step and the live board notification."""

    def _set_overdue_activity(self, deal, days=-1):
        self._script_activities(deal).unlink()
        return self.env["mail.activity"].create(
            {
                "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                "res_id": deal.id,
                "activity_type_id": self.activity_type_todo.id,
                "summary": "Late",
                "user_id": self.user_sales_salesman.id,
                "date_deadline": datetime.now().date() + timedelta(days=days),
                "deal_step_id": deal.deal_step_id.id,
            }
        )

    def test_deals_at_risk(self):
        """At risk: overdue script activities, a step deadline near or passed
        (the SLA engine's working-time deadline), or without a deadline too
        long in the step."""
        with freeze_time(FRIDAY_15):
            late, slow, quiet, lost = self._create_deals(4)
            # step 2 has no deadline
            quiet.stage_id = self.step_2.stage_id
            self._script_activities(late | slow | quiet | lost).unlink()
            self._set_overdue_activity(late)
            self._set_overdue_activity(lost)
            lost.action_set_lost()
        self.assertEqual(slow.deal_sla_deadline, self.deadline)
        Lead = self.env["crm.lead"].with_context(active_test=False)
        deals = late | slow | quiet | lost

        def at_risk():
            found = Lead.search([("id", "in", deals.ids), ("deal_at_risk", "=", True)])
            deals.invalidate_recordset()
            self.assertEqual(deals.filtered("deal_at_risk"), found, "search and compute agree")
            self.assertEqual(
                Lead.search([("id", "in", deals.ids), ("deal_at_risk", "=", False)]),
                deals - found,
            )
            return found

        # Saturday: 18 calendar hours in a step of 16 working hours, none
        # worked yet since Friday evening: not at risk
        with freeze_time("2026-11-07 08:00:00"):
            self.assertEqual(at_risk(), late)
            self.assertEqual(late.deal_overdue_activity_count, 1)
            self.assertEqual(slow.deal_days_in_step, 0)
            # Friday 15:00 to Tuesday 15:00
            self.assertEqual(slow.deal_step_sla_days, 4)
            self.assertEqual(quiet.deal_step_sla_days, 0)
        # Tuesday, past the warning (80%), before the cron ran: at risk already
        with freeze_time("2026-11-10 09:50:00"):
            self.assertEqual(slow.deal_sla_state, "ok")
            self.assertEqual(at_risk(), late | slow)
        # past the deadline, the cron marked the breach
        with freeze_time("2026-11-10 15:00:00"):
            self._run_cron()
            self.assertEqual(slow.deal_sla_state, "breached")
            self.assertEqual(at_risk(), late | slow)
        # without a deadline: 14 days in the step
        with freeze_time("2026-11-21 15:00:00"):
            self.assertEqual(at_risk(), late | slow | quiet)
            # the slow deal moves on to a step without deadline: its risk ends
            slow._deal_move_context("override", skip_gate=True).stage_id = self.step_2.stage_id
            self.assertEqual(slow.deal_sla_state, "none")
            self.assertEqual(at_risk(), late | quiet)

    def test_deals_at_risk_search_in_sql(self):
        """The "Deals at Risk" filter is one query, whatever the number of deals."""
        with freeze_time(FRIDAY_15):
            deals = self._create_deals(3)
        Lead = self.env["crm.lead"]
        with freeze_time("2026-11-10 15:00:00"):
            Lead.search([("deal_at_risk", "=", True)])  # caches (parameters, rules)
            with self.assertQueryCount(1):
                found = Lead.search([("deal_at_risk", "=", True)])
            self.assertEqual(found & deals, deals)
            more = self._create_deals(20)
            self.env.flush_all()
            with self.assertQueryCount(1):
                found = Lead.search([("deal_at_risk", "=", True)])
            self.assertEqual(found & more, self.env["crm.lead"])

    @users("user_sales_salesman")
    def test_my_deals_at_risk_action(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "deal_stages.crm_lead_action_my_deals_at_risk"
        )
        self.assertIn("deal_at_risk", action["context"])
        self.assertTrue(
            self.env.ref("deal_stages.crm_lead_menu_my_deals_at_risk")
            .with_user(self.env.user)
            ._filter_visible_menus()
        )
        self.assertFalse(
            self.env.ref("deal_stages.crm_lead_menu_deal_control")
            .with_user(self.env.user)
            ._filter_visible_menus()
        )

    def test_board_notified_on_change(self):
        def board_notifications():
            return [
                value
                for value in self.env.cr.precommit.data.get("bus.bus.values", [])
                if "deal_stages/board_changed" in value["message"]
            ]

        deal = self._create_deals()
        # a new transaction: nothing sent yet
        self.env.cr.precommit.data.pop("deal_stages.board_notified", None)
        before = len(board_notifications())
        deal.stage_id = self.step_2.stage_id
        deal.expected_revenue = 10
        self.assertEqual(len(board_notifications()) - before, 1, "one per transaction")
