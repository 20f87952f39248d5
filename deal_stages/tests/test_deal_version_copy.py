from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged, users

from .common import DealVersionCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionCopy(DealVersionCommon):
    """Duplicating a script, and publishing a draft that leaves a team."""

    def setUp(self):
        super().setUp()
        self.Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)

    def test_duplicate_is_a_draft_with_the_same_steps_and_server_actions(self):
        # configured by an administrator: a server action (which sales
        # administrators may not read), a return path, a return step
        action = self.env["ir.actions.server"].create(
            {
                "name": "Flag the deal",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'priority': '1'})",
            }
        )
        self.step_2.server_action_ids = action
        self.step_3.back_step_ids = self.step_1
        self.script.return_step_increase_id = self.step_2
        original = self.Script.browse(self.script.id)
        duplicate = original.copy()
        self.assertEqual(duplicate.state, "draft", "a duplicate drives no deal")
        self.assertEqual(duplicate.version, 1)
        self.assertFalse(duplicate.previous_version_id, "a process of its own, as an import")
        self.assertEqual(duplicate.team_ids, self.sales_team_1)
        self.assertEqual(original.state, "published")
        self.assertEqual(len(original.step_ids), 3, "the original keeps its steps")

        def steps(script):
            return script.sudo().step_ids.sorted("sequence")

        self.assertEqual(steps(duplicate).mapped("step_key"), steps(original).mapped("step_key"))
        self.assertEqual(steps(duplicate).stage_id, steps(original).stage_id)
        self.assertNotEqual(steps(duplicate)[0], steps(original)[0])
        self.assertEqual(
            steps(duplicate).check_ids.mapped("name"), steps(original).check_ids.mapped("name")
        )
        self.assertEqual(
            steps(duplicate).activity_template_ids.mapped("summary"),
            steps(original).activity_template_ids.mapped("summary"),
        )
        self.assertEqual(steps(duplicate)[1].server_action_ids, action, "the same action")
        self.assertEqual(steps(duplicate)[2].back_step_ids, steps(duplicate)[0])
        self.assertEqual(duplicate.return_step_increase_id, steps(duplicate)[1])
        # server code duplicating a script gets the same draft
        by_code = self.script.copy()
        self.assertEqual(by_code.state, "draft")
        self.assertEqual(steps(by_code)[2].back_step_ids, steps(by_code)[0])
        by_code.unlink()
        # a new version of the original is still made as before
        draft = self._new_version()
        self.assertEqual((draft.state, draft.version), ("draft", 2))
        self.assertEqual(draft.previous_version_id, self.script)
        draft.unlink()
        # published, the duplicate replaces the script its team follows
        duplicate.action_publish()
        self.assertEqual(duplicate.state, "published")
        self.assertEqual(original.state, "retired")
        self.assertEqual(duplicate.previous_version_id, self.script)
        self.assertEqual(duplicate.version, 2)

    def test_publish_dry_run_names_the_teams_the_draft_leaves(self):
        export_team = self.env["crm.team"].create({"name": "Export team"})
        (self.stage_team1_1 | self.stage_team1_2 | self.stage_prepayment).team_ids = [
            Command.link(export_team.id)
        ]
        self.script.team_ids = [Command.link(export_team.id)]
        draft = self._new_version()
        Wizard = self.env["crm.deal.script.publish"].with_user(self.user_sales_manager)
        wizard = Wizard.with_context(default_script_id=draft.id).create({})
        self.assertFalse(wizard.teams_left_note, "the draft serves every team")
        draft.team_ids = [Command.unlink(export_team.id)]
        wizard = Wizard.with_context(default_script_id=draft.id).create({})
        self.assertIn("Export team", wizard.teams_left_note)
        self.assertNotIn(self.sales_team_1.name, wizard.teams_left_note)
        # not blocked: published, the team follows no process, and the note says so
        wizard.action_publish()
        self.assertEqual(draft.state, "published")
        self.assertFalse(
            self.env["crm.deal.script"].search(
                [("state", "=", "published"), ("team_ids", "in", export_team.ids)]
            )
        )
        self.assertIn(
            "The sales teams Export team followed the previous version",
            draft.sudo().message_ids[:1].body,
        )


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestDealVersionButtonsRpc(DealVersionCommon):
    """The versions' public methods as RPC sends them: a salesperson, ids
    that do not exist, several ids where one is meant."""

    @users("user_sales_salesman")
    def test_salesperson_cannot_duplicate_or_version_a_script(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        for method in ("copy", "action_new_version_open", "action_open_publish_wizard"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(script, method)()
        self.assertEqual(
            self.env["crm.deal.script"].sudo().search_count([("process_id", "=", self.script.id)]),
            1,
            "no draft was made",
        )

    def test_buttons_with_bad_ids(self):
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        missing = Script.browse(987654321)
        for method in ("copy", "action_new_version_open", "action_open_publish_wizard"):
            with self.subTest(method=method), self.assertRaises(UserError):
                getattr(missing, method)()
        draft = self._new_version()
        both = Script.browse([self.script.id, draft.id])
        for method in ("action_new_version_open", "action_open_publish_wizard"):
            with self.subTest(method=method), self.assertRaises(UserError):
                getattr(both, method)()
        with self.assertRaises(UserError):
            both.action_view_versions()
        action = Script.browse(draft.id).action_view_versions()
        self.assertEqual(action["domain"], [("process_id", "=", self.script.id)])
