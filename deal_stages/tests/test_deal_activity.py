from datetime import date

from freezegun import freeze_time

from odoo.tests import tagged, users

from .common import DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealActivity(DealStagesCommon):
    """The step's activity templates: created on entry, on re-entry as the
    template says, assigned and dated, cancelled on exit."""

    @freeze_time("2026-11-27 10:00:00")  # a Friday
    @users("user_sales_salesman")
    def test_entry_creates_configured_activities(self):
        deal = self._create_deals()
        self.assertEqual(deal.deal_script_id, self.script)
        self.assertEqual(deal.stage_id, self.stage_team1_1)
        self.assertEqual(deal.deal_step_id, self.step_1)
        activities = self._script_activities(deal).sorted("id")
        self.assertEqual(activities.mapped("summary"), ["Send the contract", "Get the signed copy"])
        send, signed = activities
        # one calendar day; three working days from Friday is Wednesday
        self.assertEqual(send.date_deadline, date(2026, 11, 28))
        self.assertEqual(signed.date_deadline, date(2026, 12, 2))
        self.assertEqual(send.user_id, self.user_sales_salesman)
        self.assertEqual(signed.user_id, self.user_sales_manager, "team leader")
        self.assertEqual(send.activity_type_id, self.activity_type_todo)
        self.assertEqual(signed.activity_type_id, self.activity_type_upload)
        self.assertTrue(all(activities.mapped("automated")))
        self.assertEqual(activities.deal_step_id, self.step_1)

    def test_team_without_leader_falls_back_to_salesperson(self):
        self.sales_team_1.user_id = False
        deal = self._create_deals()
        signed = self._script_activities(deal).filtered(
            lambda a: a.summary == "Get the signed copy"
        )
        self.assertEqual(signed.user_id, self.user_sales_salesman)
        self.assertIn("no leader", deal.message_ids[0].body)

    @users("user_sales_salesman")
    def test_reentry_once_creates_nothing(self):
        deal = self._create_deals()
        first = self._script_activities(deal)
        first[0].action_feedback(feedback="Sent")
        deal.stage_id = self.stage_team1_2
        deal.stage_id = self.stage_team1_1
        summaries = self._script_activities(deal).mapped("summary")
        self.assertNotIn("Send the contract", summaries, "done once: never again")
        self.assertNotIn("Get the signed copy", summaries, "cancelled once: never again")

    @users("user_sales_salesman")
    def test_reentry_always_without_open_duplicate(self):
        deal = self._create_deals()
        self.step_2.sudo().cancel_activities_on_exit = False
        deal.stage_id = self.stage_team1_2
        deal.stage_id = self.stage_team1_1
        deal.stage_id = self.stage_team1_2
        invoices = self._script_activities(deal).filtered(
            lambda a: a.summary == "Issue the invoice"
        )
        self.assertEqual(len(invoices), 1, "the previous one is still open")
        invoices.action_feedback(feedback="Done")
        deal.stage_id = self.stage_team1_1
        deal.stage_id = self.stage_team1_2
        invoices = self._script_activities(deal).filtered(
            lambda a: a.summary == "Issue the invoice"
        )
        self.assertEqual(len(invoices), 1, "a new one after the previous was done")
        self.assertTrue(invoices.active)

    @users("user_sales_salesman")
    def test_exit_cancels_only_script_activities(self):
        deal = self._create_deals()
        manual = deal.activity_schedule(
            activity_type_id=self.activity_type_todo.id,
            summary="Call about the weather",
            user_id=self.user_sales_salesman.id,
        )
        deal.stage_id = self.stage_team1_2
        self.assertTrue(manual.exists(), "manual activities stay")
        self.assertEqual(self._script_activities(deal).mapped("summary"), ["Issue the invoice"])

    def test_exit_keeps_activities_when_step_says_so(self):
        self.step_1.cancel_activities_on_exit = False
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        self.assertEqual(len(self._script_activities(deal)), 3)

    def test_activity_without_texts_takes_its_type_texts(self):
        """A template without summary or note gives the activity its type's (now)."""
        self.activity_type_todo.write({"summary": "Follow up", "default_note": "<p>Call first</p>"})
        self.step_2.activity_template_ids.write({"summary": False, "note": False})
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        activity = self._script_activities(deal).filtered(lambda a: a.deal_step_id == self.step_2)
        self.assertEqual(activity.summary, "Follow up")
        self.assertIn("Call first", activity.note)
        self.activity_type_todo.default_note = "<p>Email first</p>"
        other = self._create_deals()
        other.stage_id = self.stage_team1_2
        activity = self._script_activities(other).filtered(lambda a: a.deal_step_id == self.step_2)
        self.assertIn("Email first", activity.note)
