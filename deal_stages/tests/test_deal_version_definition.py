import json

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import tagged, users
from odoo.tools import file_open

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


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionDefinition(DealVersionCommon):
    def test_export_import_export_is_identical(self):
        self.script.return_step_other_id = self.step_1
        self.step_3.auto_advance_domain = "[('probability', '>=', 90)]"
        self.step_3.auto_advance_label = "Almost sure"
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        text = Script.browse(self.script.id).export_definition()
        draft = Script.browse(Script.import_definition(text))
        self.assertEqual(draft.state, "draft")
        self.assertEqual(draft.step_ids.mapped("stage_id"), self.script.step_ids.mapped("stage_id"))
        self.assertEqual(draft.export_definition(), text)
        self.assertIn('"format_version": 2', text)
        self.assertIn('"activity_type": "mail.mail_activity_data_todo"', text)

    @users("user_sales_manager")
    def test_bad_file_lists_every_problem_and_creates_nothing(self):
        Script = self.env["crm.deal.script"]
        text = Script.browse(self.script.id).export_definition()
        broken = text.replace('"strict_order"', '"strict_ordre"', 1)
        broken = broken.replace(
            '"required_fields": [\n        "expected_revenue"',
            '"required_fields": [\n        "no_such_field"',
            1,
        )
        broken = broken.replace('"mail.mail_activity_data_upload_document"', '"No such type"', 1)
        broken = broken.replace('"key": "prepayment"', '"key": "proposition"', 1)
        broken = broken.replace(
            '"back_steps": [\n        "new"\n      ]',
            '"back_steps": [\n        "nowhere"\n      ]',
            1,
        )
        scripts, stages = Script.search_count([]), self.env["crm.stage"].search_count([])
        with self.assertRaises(UserError) as caught:
            Script.import_definition(broken)
        message = str(caught.exception)
        for expected in (
            "strict_ordre",
            "no_such_field",
            "No such type",
            "“proposition”",
            "nowhere",
        ):
            self.assertIn(expected, message)
        self.assertEqual(Script.search_count([]), scripts)
        self.assertEqual(self.env["crm.stage"].search_count([]), stages)
        with self.assertRaisesRegex(UserError, "not valid JSON"):
            Script.import_definition("{not json")
        with self.assertRaisesRegex(UserError, "not a deal process definition"):
            Script.import_definition('{"steps": []}')

    def _translate_in_russian(self):
        self.env["res.lang"]._activate_lang("ru_RU")
        self.step_3.auto_advance_domain = "[('probability', '>=', 90)]"
        self.step_3.auto_advance_label = "Almost sure"
        activity = self.step_1.activity_template_ids[:1]
        activity.write({"summary": "Send the contract", "note": "<p>Today</p>"})
        russian = {
            self.script: {"name": "Сделка B2B"},
            self.step_1: {"name": "Новая"},
            self.step_3: {"name": "Предоплата", "auto_advance_label": "Почти наверняка"},
            self.check_signed: {"name": "Подписанный договор приложен"},
            activity: {"summary": "Отправить договор"},
        }
        for record, texts in russian.items():
            for name, text in texts.items():
                record.update_field_translations(name, {"ru_RU": text})
        # an HTML text is translated term by term
        activity.update_field_translations("note", {"ru_RU": {"Today": "Сегодня"}})
        return russian, activity

    def _endpoint(self, name, company=None):
        return (
            self.env["crm.deal.handoff.endpoint"]
            .sudo()
            .create(
                {
                    "name": name,
                    "url": "https://erp.example.com/deals",
                    "company_id": (company or self.env.company).id,
                }
            )
        )

    def test_round_trip_keeps_russian_texts_and_handoff(self):
        russian, activity = self._translate_in_russian()
        endpoint = self._endpoint("1C:Enterprise")
        self.step_2.write({"handoff_endpoint_id": endpoint.id, "handoff_required": True})
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        text = Script.browse(self.script.id).export_definition()
        self.assertIn('"handoff_endpoint": "1C:Enterprise"', text)
        self.assertIn('"Подписанный договор приложен"', text, "UTF-8, not escaped")
        draft = Script.browse(Script.import_definition(text))
        self.assertEqual(draft.export_definition(), text, "export -> import -> export")
        new_step_2 = self._step(draft, "proposition")
        self.assertEqual(new_step_2.handoff_endpoint_id, endpoint)
        self.assertTrue(new_step_2.handoff_required)
        self.assertFalse(self._step(draft, "new").handoff_endpoint_id)
        # a Russian user sees the imported draft in Russian, an English one in English
        ru = draft.with_context(lang="ru_RU")
        self.assertEqual(ru.name, "Сделка B2B")
        self.assertEqual(
            ru.step_ids.sorted("sequence").mapped("name"),
            ["Новая", self.step_2.name, "Предоплата"],
        )
        self.assertEqual(self._step(ru, "prepayment").auto_advance_label, "Почти наверняка")
        new_check = self._step(ru, "new").check_ids.sorted("sequence")[0]
        self.assertEqual(new_check.name, "Подписанный договор приложен")
        new_activity = self._step(ru, "new").activity_template_ids.sorted("sequence")[0]
        self.assertEqual(new_activity.summary, "Отправить договор")
        self.assertEqual(new_activity.note, "<p>Сегодня</p>")
        en = draft.with_context(lang="en_US")
        self.assertEqual(self._step(en, "new").name, self.step_1.with_context(lang="en_US").name)
        self.assertEqual(self._step(en, "new").activity_template_ids[0].summary, activity.summary)
        # the map a Russian user opens speaks Russian
        names = [step["name"] for step in ru._deal_process_map()["steps"]]
        self.assertIn("Предоплата", names)
        self.assertTrue(russian)

    def test_handoff_endpoint_found_by_name_in_the_importing_company(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        here, there = self._endpoint("Accounting"), self._endpoint("Accounting", other_company)
        self.step_2.handoff_endpoint_id = here
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        text = Script.browse(self.script.id).export_definition()
        self.user_sales_manager.write({"company_ids": [Command.link(other_company.id)]})
        # the users the file names must work in the importing company too
        self.user_sales_leads.write({"company_ids": [Command.link(other_company.id)]})
        document = json.loads(text)
        document["script"]["teams"] = []  # the other company has its own teams
        draft = Script.browse(
            Script.with_company(other_company).import_definition(json.dumps(document))
        )
        self.assertEqual(self._step(draft, "proposition").handoff_endpoint_id, there)

    @users("user_sales_manager")
    def test_unknown_endpoint_or_translation_is_refused_with_the_list(self):
        Script = self.env["crm.deal.script"]
        endpoint = self._endpoint("1C:Enterprise")
        self.step_2.sudo().write({"handoff_endpoint_id": endpoint.id, "handoff_required": True})
        text = Script.browse(self.script.id).export_definition()
        broken = text.replace('"1C:Enterprise"', '"No such ERP"')
        broken = broken.replace(
            '"is_feedback_step": false,',
            '"is_feedback_step": false,\n      "translations": {"ru_RU": {"stage": "Этап"}},',
            1,
        )
        scripts = Script.search_count([])
        with self.assertRaises(UserError) as caught:
            Script.import_definition(broken)
        message = str(caught.exception)
        self.assertIn("unknown hand-off endpoint “No such ERP”", message)
        self.assertIn("unknown key “stage”", message)
        self.assertEqual(Script.search_count([]), scripts, "nothing created")

    def test_translations_of_inactive_languages_are_kept_unknown_ones_refused(self):
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        text = Script.browse(self.script.id).export_definition()
        text = text.replace(
            '"return_step_other": null',
            '"return_step_other": null,\n    "translations": {\n      "de_DE": {\n'
            '        "name": "Testprozess"\n      }\n    }',
            1,
        )
        self.assertFalse(self.env["res.lang"]._lang_get("de_DE").active)
        draft = Script.browse(Script.import_definition(text))
        self.assertEqual(draft.name, self.script.name)
        self.assertEqual(draft.export_definition(), text, "kept for when German is activated")
        self.env["res.lang"]._activate_lang("de_DE")
        self.assertEqual(draft.with_context(lang="de_DE").name, "Testprozess")
        with self.assertRaisesRegex(UserError, "Unknown language “de_XX”"):
            Script.import_definition(text.replace('"de_DE"', '"de_XX"'))

    def test_format_version_1_file_still_imports(self):
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        text = Script.browse(self.script.id).export_definition()
        old = text.replace('"format_version": 2', '"format_version": 1').replace(
            '      "handoff_endpoint": null,\n      "handoff_required": false,\n', ""
        )
        self.assertNotIn("handoff", old)
        draft = Script.browse(Script.import_definition(old))
        self.assertEqual(draft.export_definition(), text)

    def test_shipped_b2b_definition_imports(self):
        with file_open("deal_stages/data/deal_script_b2b.json", "rb") as file:
            text = file.read().decode()
        self.env["res.lang"]._activate_lang("ru_RU")
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        # it names no team: it adds no stage to the pipelines, it uses existing ones
        with self.assertRaisesRegex(UserError, "these do not exist: “Contract signing”"):
            Script.import_definition(text)
        team = self.env["crm.team"].create({"name": "B2B team"})
        Script.action_create_from_template(team.id)
        stages = self.env["crm.stage"].search_count([])
        draft = Script.browse(Script.import_definition(text))
        self.assertEqual(self.env["crm.stage"].search_count([]), stages)
        self.assertIn(team, draft.step_ids.stage_id.team_ids)
        self.assertEqual(draft.state, "draft")
        self.assertEqual(
            draft.with_context(lang="ru_RU").step_ids.sorted("sequence")[0].name,
            "Подписание договора",
            "the file carries the Russian texts",
        )
        template = self.env.ref("deal_stages.deal_script_template_b2b")
        self.assertEqual(len(draft.step_ids), len(template.step_ids))
        self.assertEqual(draft.export_definition(), text)

    def test_a_refused_file_is_explained_in_the_readers_language(self):
        """The wrong values of a file are listed in Russian to a Russian
        reader: the place ("step KEY") and the expected kind too."""
        self.env["res.lang"]._activate_lang("ru_RU")
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        document = json.loads(Script.browse(self.script.id).export_definition())
        first, second = document["steps"][0], document["steps"][1]
        first["sla_hours"] = "soon"
        second["sla_hours"] = -1
        with self.assertRaises(UserError) as caught:
            Script.with_context(lang="ru_RU").import_definition(json.dumps(document))
        message = str(caught.exception)
        self.assertIn(f"этап {first['key']}: неверное значение для sla_hours: число.", message)
        self.assertIn(
            f"этап {second['key']}: неверное значение для sla_hours: от 0 до 87600.", message
        )
        self.assertNotIn("step ", message)
