from psycopg2 import IntegrityError

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import DealStagesCommon


@tagged("deal_stages")
class TestCrmDealScript(DealStagesCommon):
    @users("user_sales_manager")
    def test_manager_manages_scripts(self):
        script = self.env["crm.deal.script"].create({"name": "Export deals"})
        self.assertEqual(script.company_id, self.env.company)
        script.write({"note": "<p>For foreign customers</p>"})
        script.action_archive()
        self.assertFalse(script.active)
        script.unlink()
        self.assertFalse(script.exists())

    @users("user_sales_salesman")
    def test_salesperson_reads_but_cannot_create_script(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        self.assertEqual(script.name, "Test process")
        self.assertEqual(script.team_ids, self.sales_team_1)
        self.assertEqual(len(script.step_ids), 3)
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].create({"name": "My own process"})
        with self.assertRaises(AccessError):
            script.write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            script.step_ids[0].write({"sla_hours": 1})
        with self.assertRaises(AccessError):
            script.step_ids.activity_template_ids[0].write({"deadline_days": 9})
        with self.assertRaises(AccessError):
            script.unlink()

    def test_multi_company_isolation(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign = self.env["crm.deal.script"].create(
            {"name": "Foreign process", "company_id": other_company.id}
        )
        visible = (
            self.env["crm.deal.script"]
            .with_user(self.user_sales_manager)
            .search([("name", "=", "Foreign process")])
        )
        self.assertNotIn(foreign, visible)

    def test_stage_used_twice(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.script.step_ids = [Command.create({"stage_id": self.stage_team1_1.id})]

    def test_stage_not_in_script_teams(self):
        other_team = self.env["crm.team"].create({"name": "Other team"})
        foreign_stage = self.env["crm.stage"].create(
            {"name": "Foreign", "team_ids": [other_team.id]}
        )
        with self.assertRaises(ValidationError) as error:
            self.script.step_ids = [Command.create({"stage_id": foreign_stage.id})]
        self.assertIn("not in the pipeline", str(error.exception))
        # generic stages (no team) are in every pipeline
        self.script.step_ids = [Command.create({"stage_id": self.stage_gen_1.id})]

    def test_one_active_script_per_team(self):
        with self.assertRaises(ValidationError) as error:
            self.env["crm.deal.script"].create(
                {"name": "Clashing", "team_ids": [self.sales_team_1.id]}
            )
        self.assertIn("only one active script", str(error.exception))
        self.script.action_archive()
        second = self.env["crm.deal.script"].create(
            {"name": "Second", "team_ids": [self.sales_team_1.id]}
        )
        self.assertTrue(second.active)

    def test_activity_template_validation(self):
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.step_1.activity_template_ids = [
                Command.create({"summary": "Untyped", "activity_type_id": False})
            ]
        with self.assertRaises(ValidationError) as error:
            self.step_1.activity_template_ids = [
                Command.create(
                    {
                        "summary": "Nobody",
                        "activity_type_id": self.activity_type_todo.id,
                        "assign_to": "user",
                    }
                )
            ]
        self.assertIn("choose the user", str(error.exception))
        with self.assertRaisesRegex(ValidationError, "from 0 to 3,650 days"):
            self.step_1.activity_template_ids[0].deadline_days = -1

    def test_negative_step_deadline(self):
        with self.assertRaisesRegex(ValidationError, "from 0 to 87,600 hours"):
            self.step_1.sla_hours = -2

    def test_step_with_deals_cannot_be_deleted(self):
        self._create_deals(2)
        with self.assertRaises(UserError) as error:
            self.step_1.unlink()
        self.assertIn("2 deal", str(error.exception))
        with self.assertRaises(UserError) as error:
            self.script.unlink()
        self.assertIn("archive it", str(error.exception))
        self.step_3.unlink()  # nobody there
        self.assertEqual(len(self.script.step_ids), 2)

    def test_progress_follows_step_position(self):
        deal = self._create_deals()
        self.assertEqual(deal.deal_progress, 33)
        deal.stage_id = self.stage_team1_2
        self.assertEqual(deal.deal_progress, 67)
        deal.stage_id = self.stage_gen_1  # off-script stage
        self.assertFalse(deal.deal_step_id)
        self.assertEqual(deal.deal_progress, 0)


@tagged("deal_stages")
class TestDealScriptTemplate(DealStagesCommon):
    @users("user_sales_manager")
    def test_create_from_template_for_one_team(self):
        team = self.env["crm.team"].create({"name": "B2B Team"})
        other_pipeline = self.env["crm.stage"].search([("team_ids", "in", self.sales_team_1.ids)])
        all_stages_before = self.env["crm.stage"].search([])
        script_id = self.env["crm.deal.script"].action_create_from_template(team.id)
        script = self.env["crm.deal.script"].browse(script_id)
        self.assertEqual(script.team_ids, team)
        self.assertFalse(script.is_template)
        steps = script.step_ids.sorted("sequence")
        self.assertEqual(len(steps), 7)
        self.assertEqual(
            steps.mapped("name"),
            [
                "Contract signing",
                "Invoicing",
                "Prepayment",
                "Order to accounting / production",
                "Shipment",
                "Final payment and closing documents",
                "Completion",
            ],
        )
        new_stages = self.env["crm.stage"].search([]) - all_stages_before
        self.assertEqual(new_stages.team_ids, team, "stages are created for that team only")
        self.assertEqual(steps.stage_id, new_stages.filtered(lambda s: not s.is_won))
        # in the team's pipeline the steps come, in order, after the open
        # stages it already showed (shared ones included) and before won
        pipeline = self.env["crm.stage"].search(
            ["|", ("team_ids", "=", False), ("team_ids", "in", team.ids)]
        )
        first_won = pipeline.filtered("is_won")[:1]
        before_won = pipeline[: list(pipeline).index(first_won)]
        self.assertEqual(before_won[-7:], steps.stage_id)
        self.assertTrue(before_won[:-7], "the shared open stages come first")
        self.assertEqual(
            self.env["crm.stage"].search([("team_ids", "in", self.sales_team_1.ids)]),
            other_pipeline,
        )
        self.assertTrue(steps[0].activity_template_ids)
        self.assertTrue(steps[-1].is_feedback_step)
        # add-ons find the steps created from a template step (e.g. to set
        # their auto-advance condition)
        self.assertEqual(
            steps[0].sudo().template_step_id,
            self.env.ref("deal_stages.deal_script_template_b2b_step_contract"),
        )
        # the team's new opportunities follow it from its first step
        deal = self.env["crm.lead"].create(
            {"name": "Big order", "type": "opportunity", "team_id": team.id}
        )
        self.assertEqual(deal.deal_script_id, script)
        self.assertEqual(deal.stage_id, steps[0].stage_id)
        with self.assertRaises(UserError) as error:
            self.env["crm.deal.script"].action_create_from_template(team.id)
        self.assertIn("already follows", str(error.exception))

    @users("user_sales_salesman")
    def test_salesperson_cannot_create_from_template(self):
        team = self.env["crm.team"].sudo().create({"name": "B2B Team"})
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].action_create_from_template(team.id)

    def test_template_is_not_a_team_default(self):
        template = self.env.ref("deal_stages.deal_script_template_b2b")
        self.assertTrue(template.is_template)
        self.assertFalse(template.step_ids.stage_id)
        template.team_ids = self.sales_team_1  # ignored while a template
        deal = self._create_deals()
        self.assertEqual(deal.deal_script_id, self.script)
