import json

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import DealVersionCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionDefinitionRefs(DealVersionCommon):
    """What a process file may name, however it names it."""

    def setUp(self):
        super().setUp()
        self.Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        self.text = self.Script.browse(self.script.id).export_definition()

    def _xmlid(self, record):
        return record.export_data(["id"])["datas"][0][0]

    def _assert_refused(self, document, *expected):
        scripts = self.env["crm.deal.script"].search_count([])
        stages = self.env["crm.stage"].search_count([])
        with self.assertRaises(UserError) as caught:
            self.Script.import_definition(json.dumps(document))
        for text in expected:
            self.assertIn(text, str(caught.exception))
        self.assertEqual(self.env["crm.deal.script"].search_count([]), scripts)
        self.assertEqual(self.env["crm.stage"].search_count([]), stages)

    def test_an_xml_id_is_no_way_around_what_a_name_may_find(self):
        partner_call = self.env["mail.activity.type"].create(
            {"name": "Partner call", "res_model": "res.partner"}
        )
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign_team = self.env["crm.team"].create(
            {"name": "Foreign team", "company_id": other_company.id}
        )
        old_erp = (
            self.env["crm.deal.handoff.endpoint"]
            .sudo()
            .create({"name": "Old ERP", "url": "https://erp.example.com/x", "active": False})
        )
        document = json.loads(self.text)
        document["script"]["teams"] = [self._xmlid(foreign_team)]
        step = document["steps"][0]
        step["activities"][0]["activity_type"] = self._xmlid(partner_call)
        step["handoff_endpoint"] = self._xmlid(old_erp)
        self._assert_refused(
            document,
            f"unknown sales team “{self._xmlid(foreign_team)}”",
            f"unknown activity type “{self._xmlid(partner_call)}”",
            f"unknown hand-off endpoint “{self._xmlid(old_erp)}”",
        )
        # the XML id of a record it may use is found as before
        document = json.loads(self.text)
        document["script"]["teams"] = [self._xmlid(self.sales_team_1)]
        document["steps"][0]["activities"][0]["activity_type"] = "mail.mail_activity_data_call"
        draft = self.Script.browse(self.Script.import_definition(json.dumps(document)))
        self.assertEqual(draft.team_ids, self.sales_team_1)
        self.assertEqual(
            draft.step_ids.activity_template_ids.activity_type_id[:1],
            self.env.ref("mail.mail_activity_data_call"),
        )

    def test_two_steps_on_one_stage_are_listed_with_the_other_problems(self):
        document = json.loads(self.text)
        document["steps"][1]["stage"] = document["steps"][0]["stage"]
        document["steps"][2]["required_fields"] = ["no_such_field"]
        self._assert_refused(
            document,
            f"Two steps are on the stage “{document['steps'][0]['stage']}”.",
            "no_such_field",
        )

    def test_a_file_without_teams_uses_existing_stages_and_creates_none(self):
        document = json.loads(self.text)
        document["script"]["teams"] = []
        document["steps"][1]["stage"] = "Customs clearance"
        document["steps"][2]["stage"] = "Warehouse"
        # a stage without a team would appear in every team's pipeline
        self._assert_refused(
            document,
            "The file names no sales team",
            "“Customs clearance”, “Warehouse”",
        )
        # the stages of its names are used, a shared one first
        shared = self.env["crm.stage"].create({"name": "Warehouse", "sequence": 40})
        self.env["crm.stage"].create(
            {"name": "Customs clearance", "team_ids": [Command.set(self.sales_team_1.ids)]}
        )
        other_team = self.env["crm.team"].create({"name": "Other team"})
        self.env["crm.stage"].create(
            {"name": "Warehouse", "sequence": 1, "team_ids": [Command.set(other_team.ids)]}
        )
        stages = self.env["crm.stage"].search_count([])
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        draft = self.Script.browse(self.Script.import_definition(text))
        self.assertEqual(self.env["crm.stage"].search_count([]), stages, "no stage created")
        self.assertFalse(draft.team_ids)
        self.assertEqual(draft.step_ids.sorted("sequence")[2].stage_id, shared)
        self.assertEqual(draft.export_definition(), text, "the round trip")

    def test_a_file_with_teams_creates_its_missing_stages_for_them_only(self):
        document = json.loads(self.text)
        document["steps"][2]["stage"] = "Warehouse"
        draft = self.Script.browse(self.Script.import_definition(json.dumps(document)))
        stage = draft.step_ids.sorted("sequence")[2].stage_id
        self.assertEqual(stage.name, "Warehouse")
        self.assertEqual(stage.team_ids, self.sales_team_1)
