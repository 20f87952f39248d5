"""Issue 15, "the list is the known cases": the process file, the script's
version methods and the wizards, attacked over RPC as a sales administrator
or a supervisor (wrong types, missing and foreign ids, oversized or hostile
files). Each is refused with a UserError / ValidationError / MissingError /
AccessError naming the problem, never a traceback or a silent accept."""

import json
import re
from contextlib import contextmanager

from odoo import Command
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import DealVersionCommon

REFUSED = (AccessError, MissingError, UserError, ValidationError)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackProcessFile(DealVersionCommon):
    """``import_definition`` / ``export_definition`` as a sales administrator."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Script = cls.env["crm.deal.script"].with_user(cls.user_sales_manager)
        cls.text = cls.script.with_user(cls.user_sales_manager).export_definition()
        cls.other_company = cls.env["res.company"].create({"name": "Other Company"})
        cls.other_team = cls.env["crm.team"].create(
            {"name": "Foreign Team", "company_id": cls.other_company.id}
        )
        cls.other_user = new_test_user(
            cls.env,
            login="deal_foreign_user",
            name="Olga Foreign",
            groups="base.group_user,sales_team.group_sale_salesman",
            company_id=cls.other_company.id,
            company_ids=[Command.set(cls.other_company.ids)],
        )
        cls.code_action = cls.env["ir.actions.server"].create(
            {
                "name": "Deal code action",
                "model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'description': 'ran'})",
            }
        )

    def _document(self):
        return json.loads(self.text)

    def _assert_refused(self, text, regex, exception=UserError):
        scripts = self.env["crm.deal.script"].with_context(active_test=False).search_count([])
        stages = self.env["crm.stage"].search_count([])
        with self.assertRaisesRegex(exception, regex):
            self.Script.import_definition(text)
        self.assertEqual(
            self.env["crm.deal.script"].with_context(active_test=False).search_count([]), scripts
        )
        self.assertEqual(self.env["crm.stage"].search_count([]), stages, "nothing created")

    def test_the_exported_file_imports(self):
        # the reference: the attacks below differ from it by one thing each
        draft = self.Script.browse(self.Script.import_definition(self.text))
        self.assertEqual(draft.state, "draft")

    def test_oversized_file_refused(self):
        # valid JSON, 5 MB of blanks: refused before it is read
        self._assert_refused(self.text + " " * (5 * 1024 * 1024), "5 MB")
        self._assert_refused(self.text.encode() + b" " * (5 * 1024 * 1024), "5 MB")

    def test_too_many_steps_refused(self):
        document = self._document()
        step = document["steps"][0]
        document["steps"] = [
            dict(step, key=f"step_{index}", name=f"Step {index}", stage=f"Stage {index}")
            for index in range(501)
        ]
        self._assert_refused(json.dumps(document), "500 steps")

    def test_deeply_nested_file_refused(self):
        nested = '{"format": ' + "[" * 100000 + "]" * 100000 + "}"
        self._assert_refused(nested, "nested too deeply")
        deep = "[" * 5000 + "]" * 5000
        self.assertIn('"required_fields": []', self.text)
        self._assert_refused(
            self.text.replace('"required_fields": []', f'"required_fields": {deep}', 1),
            "nested too deeply",
        )

    def test_non_finite_and_out_of_range_numbers_refused(self):
        for key, value, regex in (
            ("sla_hours", float("nan"), "NaN"),
            ("sla_hours", float("inf"), "Infinity"),
            ("sla_hours", float("-inf"), "Infinity"),
            ("sla_hours", 10**12, "sla_hours"),
            ("sla_hours", -1, "sla_hours"),
        ):
            with self.subTest(key=key, value=value):
                document = self._document()
                document["steps"][0][key] = value
                self._assert_refused(json.dumps(document), regex)
        # 1e400 is read as infinity by Python's JSON parser
        self._assert_refused(
            re.sub(r'"sla_hours": [0-9.]+', '"sla_hours": 1e400', self.text, count=1), "sla_hours"
        )
        for key, value, regex in (
            ("sla_warning_percent", 150, "sla_warning_percent"),
            ("sla_warning_percent", -5, "sla_warning_percent"),
            ("sla_escalation_hours", float("nan"), "NaN"),
            ("sla_escalation_hours", 1e30, "sla_escalation_hours"),
        ):
            with self.subTest(key=key, value=value):
                document = self._document()
                document["script"][key] = value
                self._assert_refused(json.dumps(document), regex)
        for value in (10**12, -1):
            with self.subTest(deadline_days=value):
                document = self._document()
                document["steps"][0]["activities"][0]["deadline_days"] = value
                self._assert_refused(json.dumps(document), "deadline_days")

    def test_other_company_team_and_users_refused(self):
        document = self._document()
        document["script"]["teams"] = [self.other_team.name]
        self._assert_refused(json.dumps(document), "unknown sales team “Foreign Team”")
        document = self._document()
        document["steps"][0]["activities"][0].update(assign_to="user", user=self.other_user.login)
        self._assert_refused(json.dumps(document), "unknown user “deal_foreign_user”")
        document = self._document()
        document["script"].update(sla_escalation_hours=4, sla_escalation_user=self.other_user.login)
        self._assert_refused(json.dumps(document), "unknown user “deal_foreign_user”")
        # nor by naming the other company in the context: the file is read
        # as the superuser, for whom Odoo does not check that context key
        document = self._document()
        document["script"]["teams"] = [self.other_team.name]
        with self.assertRaises(AccessError):
            self.Script.with_context(allowed_company_ids=self.other_company.ids).import_definition(
                json.dumps(document)
            )

    def test_html_translations_sanitized(self):
        # the translations are stored as the file gives them: HTML is cleaned
        # like the English text (else a script runs in a reader's browser)
        document = self._document()
        activity = document["steps"][0]["activities"][0]
        activity["note"] = "<p>Call the customer</p>"
        activity["translations"] = {
            "ru_RU": {"note": '<p>Позвонить</p><img src="x" onerror="alert(1)">'}
        }
        draft = self.Script.browse(self.Script.import_definition(json.dumps(document)))
        template = draft.step_ids.sorted("sequence")[0].activity_template_ids.sorted("sequence")[0]
        template.flush_recordset()
        self.env.cr.execute(
            "SELECT note->>'ru_RU' FROM crm_deal_script_activity WHERE id = %s", [template.id]
        )
        russian = self.env.cr.fetchone()[0]
        self.assertIn("Позвонить", russian)
        self.assertNotIn("onerror", russian)

    def test_activity_type_of_another_model_refused(self):
        self.env["mail.activity.type"].create({"name": "Partner call", "res_model": "res.partner"})
        document = self._document()
        document["steps"][0]["activities"][0]["activity_type"] = "Partner call"
        self._assert_refused(json.dumps(document), "unknown activity type “Partner call”")

    def test_server_action_the_importer_may_not_read_refused(self):
        document = self._document()
        document["steps"][0]["server_actions"] = [self.code_action.name]
        self._assert_refused(json.dumps(document), "Deal code action", AccessError)
        # an administrator (Settings) may attach it
        draft = self.env["crm.deal.script"].browse(
            self.env["crm.deal.script"]
            .with_user(self.env.ref("base.user_admin"))
            .import_definition(json.dumps(document))
        )
        self.assertEqual(draft.step_ids.server_action_ids, self.code_action)

    def test_wrong_types_refused(self):
        for text in (None, 42, ["a"], {"format": "x"}, b"\xff\xfe"):
            with self.subTest(text=text):
                self._assert_refused(text, ".")

    def test_other_company_script_not_exported_nor_versioned(self):
        foreign = self.env["crm.deal.script"].create(
            {"name": "Foreign process", "company_id": self.other_company.id}
        )
        Script = self.Script.with_context(allowed_company_ids=self.env.company.ids)
        for method in ("export_definition", "action_new_version", "action_open_export_definition"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(Script.browse(foreign.id), method)()
        with self.assertRaises(MissingError):
            Script.browse(999999999).export_definition()


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackWizards(DealVersionCommon):
    """The force stage, lost and publish wizards with hostile values."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.deal = cls.env["crm.lead"].create(
            {
                "name": "Deal to force",
                "type": "opportunity",
                "team_id": cls.sales_team_1.id,
                "user_id": cls.user_sales_salesman.id,
            }
        )
        cls.team_2 = cls.env["crm.team"].create({"name": "Team 2"})
        cls.other_team_deal = cls.env["crm.lead"].create(
            {"name": "Team 2 deal", "type": "opportunity", "team_id": cls.team_2.id}
        )

    @contextmanager
    def _assert_clean_refusal(self):
        """A refusal the user can read (not a server error)."""
        with self.assertRaises(Exception) as caught:
            yield
        self.assertIsInstance(caught.exception, REFUSED, repr(caught.exception))

    def _force_wizard(self, user, **values):
        return (
            self.env["crm.deal.force.stage"]
            .with_user(user)
            .create({"lead_ids": [Command.set(self.deal.ids)], "reason": "Signed", **values})
        )

    def test_force_stage_wizard_foreign_missing_and_wrong_ids(self):
        supervisor = self.user_supervisor
        # a stage of another team's pipeline
        foreign_stage = self.env["crm.stage"].create(
            {"name": "Team 2 only", "team_ids": [self.team_2.id]}
        )
        wizard = self._force_wizard(supervisor, stage_id=foreign_stage.id)
        with self.assertRaisesRegex(UserError, "not in the pipeline"):
            wizard.action_confirm()
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)
        for values in (
            {"stage_id": 999999999},
            {"stage_id": "abc"},
            {"lead_ids": [Command.set([999999999])], "stage_id": self.stage_team1_2.id},
            {"lead_ids": [Command.set(["abc"])], "stage_id": self.stage_team1_2.id},
        ):
            with self.subTest(values=values), self._assert_clean_refusal():
                self._force_wizard(supervisor, **values).action_confirm()
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)
        # a salesperson cannot use it at all
        with self.assertRaises(AccessError):
            self._force_wizard(
                self.user_sales_salesman, stage_id=self.stage_team1_2.id
            ).action_confirm()
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)

    def test_lost_wizard_foreign_and_missing_deals(self):
        reason = self.env["crm.lost.reason"].create({"name": "Too expensive"})
        Wizard = self.env["crm.lead.lost"].with_user(self.user_sales_salesman)
        # another salesperson's deal of another team: not the salesperson's to lose
        self.other_team_deal.user_id = self.user_sales_leads
        for lead_ids in ([self.other_team_deal.id], [999999999]):
            with self.subTest(lead_ids=lead_ids), self._assert_clean_refusal():
                Wizard.create(
                    {"lead_ids": [Command.set(lead_ids)], "lost_reason_id": reason.id}
                ).action_lost_reason_apply()
        self.assertTrue(self.other_team_deal.active)

    def test_publish_wizard_and_method_wrong_values(self):
        draft = self._new_version()
        for kwargs in (
            {"in_flight": "everything"},
            {"in_flight": ["migrate"]},
            {"in_flight": "migrate", "step_map": "new:proposition"},
            {"in_flight": "migrate", "step_map": {"new": 5}},
            {"in_flight": "migrate", "step_map": [["new", "new"]]},
            {"in_flight": "migrate", "step_map": {"new": "nowhere"}},
        ):
            with self.subTest(kwargs=kwargs), self._assert_clean_refusal():
                draft.with_user(self.user_sales_manager).action_publish(**kwargs)
        self.assertEqual(draft.state, "draft")
        # a salesperson may not publish
        with self.assertRaises(AccessError):
            draft.with_user(self.user_sales_salesman).action_publish()
        self.assertEqual(draft.state, "draft")
