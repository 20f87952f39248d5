from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestDealSecurity(DealStagesCommon):
    """Access as RPC callers get it: ``with_user`` and the public methods only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_sales_salesman_2 = mail_new_test_user(
            cls.env,
            login="user_sales_salesman_2",
            name="Second Salesperson",
            email="salesman2@example.com",
            groups="sales_team.group_sale_salesman",
        )
        deals = cls.env["crm.lead"].create(
            [
                {
                    "name": f"Deal of {user.name}",
                    "type": "opportunity",
                    "team_id": cls.sales_team_1.id,
                    "user_id": user.id,
                }
                for user in (cls.user_sales_salesman, cls.user_sales_salesman_2)
            ]
        )
        cls.own_deal, cls.other_deal = deals
        deals.write({"stage_id": cls.stage_team1_2.id})

    def _as(self, user, records):
        records = records.with_user(user)
        records.invalidate_recordset()
        return records

    # ------------------------------------------------------------ deals, history

    def test_salesperson_reads_and_moves_own_deal_only(self):
        own = self._as(self.user_sales_salesman, self.own_deal)
        self.assertTrue(own.deal_log_ids)
        own.write({"stage_id": self.stage_prepayment.id})
        self.assertEqual(own.deal_step_id, self.step_3)
        other = self._as(self.user_sales_salesman, self.other_deal)
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            other.read(["name", "deal_step_id"])
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            other.write({"stage_id": self.stage_prepayment.id})
        self.assertEqual(self.other_deal.stage_id, self.stage_team1_2)

    def test_salesperson_sees_only_own_deals_history(self):
        Log = self.env["crm.deal.stage.log"].with_user(self.user_sales_salesman)
        visible = Log.search([("lead_id", "in", (self.own_deal | self.other_deal).ids)])
        self.assertEqual(visible.lead_id, self.own_deal)
        other_logs = self.other_deal.deal_log_ids
        self.assertTrue(other_logs)
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            other_logs.with_user(self.user_sales_salesman).read(["stage_id"])
        # read_group (pivot) over the history does not leak other deals either
        groups = Log._read_group([], ["lead_id"], ["__count"])
        self.assertNotIn(self.other_deal.id, [lead.id for lead, _count in groups])
        # a salesperson who sees all documents sees both
        all_logs = (
            self.env["crm.deal.stage.log"]
            .with_user(self.user_sales_leads)
            .search([("lead_id", "in", (self.own_deal | self.other_deal).ids)])
        )
        self.assertEqual(all_logs.lead_id, self.own_deal | self.other_deal)

    def test_history_is_system_owned(self):
        """Nobody rewrites history by hand, not even on their own deal."""
        own_logs = self._as(self.user_sales_salesman, self.own_deal.deal_log_ids)
        for user in (self.user_sales_salesman, self.user_sales_manager):
            logs = own_logs.with_user(user)
            with self.assertRaises(AccessError):
                logs.write({"cause": "override", "note": "forged"})
            with self.assertRaises(AccessError):
                logs.unlink()
            with self.assertRaises(AccessError):
                logs.create({"lead_id": self.own_deal.id, "stage_id": self.stage_team1_1.id})
        self.assertNotIn("forged", self.own_deal.deal_log_ids.mapped("note"))

    def test_forged_move_context_is_ignored(self):
        """A cause or gate skip sent as JSON context (RPC) is not trusted."""
        own = self._as(self.user_sales_salesman, self.own_deal).with_context(
            deal_move={"cause": "override", "skip_gate": True}
        )
        own.write({"stage_id": self.stage_prepayment.id})
        last = self.own_deal.deal_log_ids.sorted("id")[-1]
        self.assertEqual(last.cause, "move")

    # ------------------------------------------------------------ configuration

    def test_salesperson_cannot_edit_scripts(self):
        script = self.script.with_user(self.user_sales_salesman)
        self.assertTrue(script.step_ids.activity_template_ids)  # may read
        with self.assertRaises(AccessError):
            script.write({"name": "Mine now"})
        with self.assertRaises(AccessError):
            script.step_ids[:1].write({"sla_hours": 1})
        with self.assertRaises(AccessError):
            script.step_ids.activity_template_ids[:1].write({"summary": "Skip it"})
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].with_user(self.user_sales_salesman).create(
                {"name": "Own script"}
            )
        with self.assertRaises(AccessError):
            script.unlink()
        # the template action is a manager's tool too
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].with_user(
                self.user_sales_salesman
            ).action_create_from_template(self.sales_team_1.id)

    def test_salesperson_cannot_touch_automation(self):
        rule = self.env.ref("deal_stages.base_automation_deal_stage_entry")
        action = self.env.ref("deal_stages.ir_actions_server_deal_stage_entry")
        for record, vals in ((rule, {"active": False}), (action, {"code": "pass"})):
            with self.assertRaises(AccessError):
                record.with_user(self.user_sales_salesman).write(vals)
            with self.assertRaises(AccessError):
                record.with_user(self.user_sales_manager).write(vals)
        with self.assertRaises(AccessError):
            self.env["base.automation"].with_user(self.user_sales_salesman).create(
                {
                    "name": "Mine",
                    "model_id": self.env["ir.model"]._get_id("crm.lead"),
                    "trigger": "on_create_or_write",
                }
            )
        self.assertTrue(rule.active)

    def test_engine_methods_not_callable_over_rpc(self):
        """Private engine methods (leading underscore) are refused by RPC."""
        from odoo.service.model import get_public_method

        lead = self.own_deal.with_user(self.user_sales_salesman)
        for name in ("_deal_run_entry_automation", "_deal_open_stays", "_deal_move_context"):
            with self.assertRaises(AccessError):
                get_public_method(lead, name)

    def test_salesperson_cannot_override_gates(self):
        other_stage = self.stage_prepayment
        with self.assertRaises(AccessError):
            self._as(self.user_sales_salesman, self.own_deal).action_deal_force_stage(
                other_stage.id, "I say so"
            )
        self.assertEqual(self.own_deal.stage_id, self.stage_team1_2)

    # ------------------------------------------------------------ checks, changes

    def test_checks_and_changes_follow_deal_access(self):
        for model in ("crm.deal.check", "crm.deal.order.change"):
            records = self.env[model].search([("lead_id", "=", self.other_deal.id)])
            visible = (
                self.env[model]
                .with_user(self.user_sales_salesman)
                .search([("lead_id", "in", (self.own_deal | self.other_deal).ids)])
            )
            self.assertFalse(visible & records, f"{model}: another salesperson's records leak")
            if records:
                with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
                    records.with_user(self.user_sales_salesman).read(["lead_id"])

    # ------------------------------------------------------------ multi-company

    def test_multi_company_isolation(self):
        self._activate_multi_company()
        stage_c2 = self.env["crm.stage"].create(
            {"name": "C2 stage", "team_ids": [Command.link(self.team_company2.id)]}
        )
        script_c2 = self.env["crm.deal.script"].create(
            {
                "name": "C2 process",
                "company_id": self.company_2.id,
                "team_ids": [Command.link(self.team_company2.id)],
                "step_ids": [Command.create({"stage_id": stage_c2.id})],
            }
        )
        deal_c2 = self.env["crm.lead"].create(
            {
                "name": "C2 deal",
                "type": "opportunity",
                "team_id": self.team_company2.id,
                "company_id": self.company_2.id,
                "user_id": False,
            }
        )
        self.assertEqual(deal_c2.deal_script_id, script_c2)
        self.assertTrue(deal_c2.deal_log_ids)
        # user_sales_leads sees all deals, but only in the main company
        user = self.user_sales_leads
        self.assertNotIn(self.company_2, user.company_ids)
        Script = self.env["crm.deal.script"].with_user(user)
        self.assertNotIn(script_c2, Script.search([]))
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            script_c2.with_user(user).read(["name"])
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            script_c2.step_ids.with_user(user).read(["name"])
        Log = self.env["crm.deal.stage.log"].with_user(user)
        self.assertFalse(Log.search([("lead_id", "=", deal_c2.id)]))
        with self.assertRaises(AccessError), mute_logger("odoo.addons.base.models.ir_rule"):
            deal_c2.deal_log_ids.with_user(user).read(["stage_id"])
        # the multi-company manager sees it when the company is allowed
        manager = self.user_sales_manager_mc
        logs = (
            self.env["crm.deal.stage.log"]
            .with_user(manager)
            .with_context(allowed_company_ids=[self.company_2.id])
            .search([("lead_id", "=", deal_c2.id)])
        )
        self.assertTrue(logs)

    def test_script_of_another_company_refused(self):
        """A deal never follows another company's script, however it is written."""
        self._activate_multi_company()
        script_c2 = self.env["crm.deal.script"].create(
            {"name": "C2 process", "company_id": self.company_2.id}
        )
        deal = self.own_deal.with_user(self.user_sales_manager_mc).with_context(
            allowed_company_ids=[self.company_main.id, self.company_2.id]
        )
        self.assertEqual(deal.company_id, self.company_main)
        # as over RPC, the failed request is rolled back
        with (
            self.assertRaisesRegex(ValidationError, "choose a script of the deal's company"),
            self.env.cr.savepoint(),
        ):
            deal.write({"deal_script_id": script_c2.id})
        self.env.invalidate_all()
        self.assertEqual(self.own_deal.deal_script_id, self.script)
        # nor by moving the deal to the other company under its script
        with (
            self.assertRaisesRegex(ValidationError, "choose a script of the deal's company"),
            self.env.cr.savepoint(),
        ):
            deal.write({"company_id": self.company_2.id, "user_id": False})
        self.env.invalidate_all()
        self.assertEqual(self.own_deal.company_id, self.company_main)
        # a team serving both companies: its script only starts deals of its company
        team_shared = self.env["crm.team"].create({"name": "Shared team", "company_id": False})
        stage_shared = self.env["crm.stage"].create(
            {"name": "Shared stage", "team_ids": [Command.link(team_shared.id)]}
        )
        script_main = self.env["crm.deal.script"].create(
            {
                "name": "Main company process",
                "company_id": self.company_main.id,
                "team_ids": [Command.link(team_shared.id)],
                "step_ids": [Command.create({"stage_id": stage_shared.id})],
            }
        )
        deals = self.env["crm.lead"].create(
            [
                {
                    "name": f"Shared team deal {company.name}",
                    "type": "opportunity",
                    "team_id": team_shared.id,
                    "company_id": company.id,
                    "user_id": False,
                }
                for company in (self.company_main, self.company_2)
            ]
        )
        self.assertEqual(deals.mapped("deal_script_id"), script_main)
        self.assertEqual(deals[1].company_id, self.company_2)
        self.assertFalse(deals[1].deal_script_id)
