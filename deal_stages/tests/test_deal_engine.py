from datetime import datetime

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged, users

from .common import DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealEngine(DealStagesCommon):
    """Entry automation through the shipped automation rules."""

    @users("user_sales_salesman")
    def test_entry_note_lists_done_and_skipped(self):
        deal = self._create_deals()
        note = deal.message_ids.filtered(lambda m: "entered" in (m.body or ""))[:1]
        self.assertIn("Send the contract", note.body)
        self.assertIn("Get the signed copy", note.body)
        deal.stage_id = self.stage_team1_2
        deal.stage_id = self.stage_team1_1
        note = deal.message_ids.filtered(lambda m: "entered" in (m.body or ""))[:1]
        self.assertIn("Skipped", note.body)
        self.assertIn("created once already", note.body)

    @users("user_sales_salesman")
    def test_deal_created_in_step_3(self):
        deal = self._create_deals(stage_id=self.stage_prepayment.id)
        activities = self._script_activities(deal)
        self.assertEqual(activities.mapped("summary"), ["Check the prepayment"])
        self.assertEqual(activities.user_id, self.user_sales_leads)
        self.assertEqual(deal.deal_step_id, self.step_3)
        self.assertEqual(deal.deal_progress, 100)

    def test_note_names_the_step_as_configured_now(self):
        """The scripts' structure and names are cached: a change shows at once."""
        self.step_2.name = "Invoicing"
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        self.assertTrue(deal.message_ids.filtered(lambda m: "Step Invoicing entered." in m.body))
        self.step_2.update_field_translations("name", {"en_US": "Billing"})
        self.step_2.sla_hours = 8
        other = self._create_deals()
        other.stage_id = self.stage_team1_2
        self.assertTrue(other.message_ids.filtered(lambda m: "Step Billing entered." in m.body))
        self.assertTrue(other.deal_sla_deadline, "the step's new deadline applies")

    def test_server_actions_of_step(self):
        action = self.env["ir.actions.server"].create(
            {
                "name": "Tag hot deals",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'priority': '3'})",
            }
        )
        self.step_2.server_action_ids = action
        deals = self._create_deals(3)
        self.assertEqual(set(deals.mapped("priority")), {"0"})
        deals.stage_id = self.stage_team1_2
        self.assertEqual(set(deals.mapped("priority")), {"3"})

    def test_deal_without_script_untouched(self):
        other_team = self.env["crm.team"].create({"name": "No process"})
        deal = self.env["crm.lead"].create(
            {"name": "Plain", "type": "opportunity", "team_id": other_team.id}
        )
        deal.stage_id = self.stage_gen_1
        self.assertFalse(deal.deal_script_id)
        self.assertFalse(deal.deal_log_ids)
        self.assertFalse(self._script_activities(deal))


@tagged("post_install", "-at_install", "deal_stages")
class TestDealAutomationRulesOff(DealStagesCommon):
    """Switching rules off re-patches the registry: kept in a class of its own."""

    def test_rule_switched_off_stops_automation_not_history(self):
        self.env.ref("deal_stages.base_automation_deal_stage_entry").active = False
        self.env.ref("deal_stages.base_automation_deal_script_set").active = False
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        self.assertFalse(self._script_activities(deal))
        self.assertEqual(len(deal.deal_log_ids), 2, "history is always kept")

    def test_admin_action_added_to_the_shipped_rule(self):
        """The shipped rule hands deals straight to the engine; an action an
        admin adds to it runs as well, and the engine still runs once."""
        rule = self.env.ref("deal_stages.base_automation_deal_stage_entry")
        self.assertIn(rule.id, self.env["base.automation"]._deal_engine_rules())
        self.env["ir.actions.server"].create(
            {
                "name": "Tag deals entering a step",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "base_automation_id": rule.id,
                "usage": "base_automation",
                "state": "code",
                "code": "records.write({'priority': '3'})",
            }
        )
        self.assertNotIn(rule.id, self.env["base.automation"]._deal_engine_rules())
        deals = self._create_deals(3)
        deals.stage_id = self.stage_team1_2
        self.assertEqual(set(deals.mapped("priority")), {"3"})
        for deal in deals:
            self.assertEqual(
                self._script_activities(deal).mapped("summary").count("Issue the invoice"), 1
            )


@tagged("post_install", "-at_install", "deal_stages")
class TestDealScriptAssignment(DealStagesCommon):
    @users("user_sales_salesman")
    def test_lead_converted_enters_script(self):
        lead = self.env["crm.lead"].create(
            {
                "name": "Incoming lead",
                "type": "lead",
                "team_id": self.sales_team_1.id,
                "user_id": self.user_sales_salesman.id,
            }
        )
        self.assertFalse(lead.deal_script_id, "plain leads are untouched")
        self.assertFalse(lead.deal_log_ids)
        self.assertFalse(self._script_activities(lead))
        lead.write({"type": "opportunity", "stage_id": self.stage_team1_2.id})
        self.assertEqual(lead.deal_script_id, self.script)
        self.assertEqual(lead.deal_step_id, self.step_2)
        self.assertEqual(lead.deal_log_ids.stage_id, self.stage_team1_2)
        self.assertEqual(self._script_activities(lead).mapped("summary"), ["Issue the invoice"])

    @users("user_sales_salesman")
    def test_lead_converted_by_wizard(self):
        lead = self.env["crm.lead"].create(
            {
                "name": "Incoming lead",
                "type": "lead",
                "team_id": self.sales_team_1.id,
                "user_id": self.user_sales_salesman.id,
                "contact_name": "Amy Wong",
                "email_from": "amy.wong@test.example.com",
            }
        )
        wizard = Form(
            self.env["crm.lead2opportunity.partner"].with_context(
                active_model="crm.lead", active_id=lead.id, active_ids=lead.ids
            )
        ).save()
        wizard.action_apply()
        self.assertEqual(lead.type, "opportunity")
        self.assertEqual(lead.deal_script_id, self.script)
        self.assertEqual(len(lead.deal_log_ids), 1)
        self.assertTrue(self._script_activities(lead))

    def test_script_change_limited_after_first_step(self):
        other = self.env["crm.deal.script"].create({"name": "Other process"})
        deal = self._create_deals().with_user(self.user_sales_salesman)
        deal.deal_script_id = other  # still in the first step: allowed
        self.assertEqual(deal.deal_script_id, other)
        deal.deal_script_id = self.script
        deal.stage_id = self.stage_team1_2
        with self.assertRaises(UserError):
            deal.deal_script_id = other
        deal.with_user(self.user_sales_manager).deal_script_id = other
        self.assertEqual(deal.deal_script_id, other)

    def test_existing_deal_given_script_opens_stay_at_last_move(self):
        self.script.team_ids = False
        deal = self._create_deals(date_last_stage_update=datetime(2026, 11, 2, 9, 0))
        self.assertFalse(deal.deal_script_id)
        with freeze_time("2026-11-05 09:00:00"):
            deal.deal_script_id = self.script
        self.assertEqual(deal.deal_log_ids.date_in, datetime(2026, 11, 2, 9, 0))
        self.assertEqual(deal.deal_step_id, self.step_1)


@tagged("post_install", "-at_install", "deal_stages")
class TestDealStageHistory(DealStagesCommon):
    @users("user_sales_salesman")
    def test_history_rows_and_durations(self):
        with freeze_time("2026-11-02 09:00:00"):
            deal = self._create_deals()
        with freeze_time("2026-11-02 15:30:00"):
            deal.stage_id = self.stage_team1_2  # form / RPC write
        with freeze_time("2026-11-04 15:30:00"):
            deal.write({"stage_id": self.stage_prepayment.id})
        logs = deal.deal_log_ids.sorted("date_in")
        self.assertEqual(
            logs.mapped("stage_id"), self.stage_team1_1 + self.stage_team1_2 + self.stage_prepayment
        )
        self.assertEqual(logs.mapped("step_id"), self.step_1 + self.step_2 + self.step_3)
        self.assertEqual(logs[1].from_stage_id, self.stage_team1_1)
        self.assertEqual(logs[2].from_step_id, self.step_2)
        self.assertEqual(logs.mapped("duration_hours"), [6.5, 48.0, 0.0])
        self.assertEqual(logs[0].date_out, datetime(2026, 11, 2, 15, 30))
        self.assertFalse(logs[2].date_out)
        self.assertEqual(set(logs.mapped("cause")), {"move"})
        self.assertEqual(logs.user_id, self.user_sales_salesman)
        self.assertEqual(logs.salesperson_id, self.user_sales_salesman)
        self.assertEqual(logs.team_id, self.sales_team_1)

    def test_kanban_drag_logs_the_mover(self):
        deal = self._create_deals()
        # the kanban drag saves through web_save as the user who drags
        deal.with_user(self.user_sales_leads).web_save(
            {"stage_id": self.stage_team1_2.id}, specification={}
        )
        last = deal.deal_log_ids.sorted("id")[-1]
        self.assertEqual(last.user_id, self.user_sales_leads)
        self.assertEqual(last.salesperson_id, self.user_sales_salesman)

    def test_batch_write_of_200_deals(self):
        with freeze_time("2026-11-02 09:00:00"):
            deals = self._create_deals(200)
        with freeze_time("2026-11-02 11:00:00"):
            deals.write({"stage_id": self.stage_team1_2.id})
        logs = self.env["crm.deal.stage.log"].search([("lead_id", "in", deals.ids)])
        self.assertEqual(len(logs), 400)
        closed = logs.filtered("date_out")
        self.assertEqual(len(closed), 200)
        self.assertEqual(set(closed.mapped("duration_hours")), {2.0})
        self.assertEqual(
            len(
                self._script_activities(deals).filtered(lambda a: a.summary == "Issue the invoice")
            ),
            200,
        )

    @users("user_sales_salesman")
    def test_salesperson_cannot_write_history(self):
        deal = self._create_deals()
        log = deal.deal_log_ids
        self.assertEqual(len(log), 1, "salespeople read their deals' history")
        with self.assertRaises(AccessError):
            log.write({"cause": "override"})
        with self.assertRaises(AccessError):
            self.env["crm.deal.stage.log"].create({"lead_id": deal.id, "cause": "auto"})
