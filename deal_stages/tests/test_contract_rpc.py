"""The public contract probed from outside: bad input and permission edges of
every contract method and field, as an RPC client sends them (ids as text,
missing or foreign records, out-of-range numbers), as a salesperson, a team
leader in the supervisor group and a sales administrator.

Each case must end in a clear UserError / ValidationError / MissingError /
AccessError naming the problem: never a traceback, never a silent accept,
never lost data."""

from contextlib import contextmanager

from odoo import Command
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.service.model import get_public_method
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealStagesCommon

CLEAR_ERRORS = (UserError, ValidationError, MissingError, AccessError)


class DealContractCommon(DealStagesCommon):
    """The common script; a second team with its own script, a team leader
    (supervisor group) of team 1 only, a sales administrator; ``deal`` is the
    salesperson's, at step 1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_admin = mail_new_test_user(
            cls.env,
            login="user_contract_sales_admin",
            name="Carl Contract Admin",
            email="carl.admin@test.example.com",
            groups="sales_team.group_sale_manager",
        )
        cls.user_leader = mail_new_test_user(
            cls.env,
            login="user_contract_leader",
            name="Lea Leader",
            email="lea.leader@test.example.com",
            groups="deal_stages.group_deal_supervisor",
        )
        cls.user_other_salesman = mail_new_test_user(
            cls.env,
            login="user_contract_other_salesman",
            name="Otto Other",
            email="otto.other@test.example.com",
            groups="sales_team.group_sale_salesman",
        )
        cls.sales_team_1.user_id = cls.user_leader
        cls.team_2 = cls.env["crm.team"].create(
            {"name": "Other team", "user_id": cls.user_sales_manager.id}
        )
        cls.stage_team2_1 = cls.env["crm.stage"].create(
            {"name": "Team 2 start", "sequence": 1, "team_ids": [cls.team_2.id]}
        )
        cls.script_2 = cls.env["crm.deal.script"].create(
            {
                "name": "Other process",
                "team_ids": [cls.team_2.id],
                "step_ids": [Command.create({"stage_id": cls.stage_team2_1.id})],
            }
        )
        cls.step_team2 = cls.script_2.step_ids
        cls.deal = cls._create_deal("Contract deal", expected_revenue=1000)
        cls.deal_team2 = cls.env["crm.lead"].create(
            {
                "name": "Team 2 deal",
                "type": "opportunity",
                "team_id": cls.team_2.id,
                "user_id": cls.user_other_salesman.id,
            }
        )

    @classmethod
    def _create_deal(cls, name, **values):
        return cls.env["crm.lead"].create(
            {
                "name": name,
                "type": "opportunity",
                "team_id": cls.sales_team_1.id,
                "user_id": cls.user_sales_salesman.id,
                **values,
            }
        )

    def _as(self, user, records):
        records = records.with_user(user)
        records.invalidate_recordset()
        return records

    @contextmanager
    def _refused(self, exception, regex):
        """``exception`` whose message matches ``regex``; what the call did
        is rolled back, as the RPC call's transaction would be."""
        with self.assertRaisesRegex(exception, regex), self.env.cr.savepoint():
            yield


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractOrderChange(DealContractCommon):
    """``crm.deal.order.change``: ``create`` applies the change."""

    def setUp(self):
        super().setUp()
        self.deal._deal_move_context("move", skip_gate=True).stage_id = self.stage_team1_2
        self.Change = self.env["crm.deal.order.change"].with_user(self.user_sales_salesman)

    def _assert_nothing_applied(self):
        self.deal.invalidate_recordset()
        self.assertFalse(self.deal.deal_change_ids)
        self.assertEqual(self.deal.expected_revenue, 1000)
        self.assertEqual(self.deal.deal_step_id, self.step_2)

    @mute_logger("odoo.sql_db")
    def test_bad_lead_ids(self):
        for lead_id, pattern in (
            (999999, "(?i)deal.*(exist|deleted)"),
            ("abc", "(?i)deal"),
            ([self.deal.id], "(?i)deal"),
            (False, "(?i)deal"),
            (-1, "(?i)deal.*(exist|deleted)"),
        ):
            with self.subTest(lead_id=lead_id), self._refused(CLEAR_ERRORS, pattern):
                self.Change.create({"lead_id": lead_id, "amount_delta": 10})
        self._assert_nothing_applied()

    def test_bad_return_steps(self):
        for step_id, pattern in (
            (999999, "(?i)step"),
            ("abc", "(?i)step"),
            (self.step_team2.id, "(?i)step"),
            (self.step_3.id, "(?i)current step or an earlier one"),
        ):
            with self.subTest(step_id=step_id), self._refused(CLEAR_ERRORS, pattern):
                self.Change.create(
                    {"lead_id": self.deal.id, "return_step_id": step_id, "amount_delta": 10}
                )
        self._assert_nothing_applied()

    def test_bad_types_and_amounts(self):
        for vals, pattern in (
            ({"change_type": "explode"}, "(?i)type"),
            ({"change_type": 3}, "(?i)type"),
            ({"amount_delta": "abc"}, "(?i)amount"),
            ({"amount_delta": [5]}, "(?i)amount"),
            ({"amount_delta": float("nan")}, "(?i)amount"),
            ({"amount_delta": float("inf")}, "(?i)amount"),
            ({"change_type": "increase", "amount_delta": -50}, "(?i)increase"),
            ({"change_type": "decrease", "amount_delta": 50}, "(?i)decrease"),
            ({"change_type": "decrease", "amount_delta": -5000}, "(?i)below zero|negative"),
        ):
            with self.subTest(vals=vals), self._refused(CLEAR_ERRORS, pattern):
                self.Change.create({"lead_id": self.deal.id, **vals})
        self._assert_nothing_applied()

    def test_valid_amounts_as_text_and_int(self):
        # what JSON clients send: an int, a numeric text
        self.Change.create({"lead_id": self.deal.id, "change_type": "increase", "amount_delta": 5})
        self.Change.create(
            {"lead_id": self.deal.id, "change_type": "correction", "amount_delta": "-5.5"}
        )
        self.assertAlmostEqual(self.deal.expected_revenue, 999.5)

    def test_foreign_deal_refused(self):
        with self.assertRaises(AccessError):
            self.Change.create({"lead_id": self.deal_team2.id, "amount_delta": 10})
        self.assertFalse(self.deal_team2.sudo().deal_change_ids)

    def test_recorded_change_not_edited_through_the_deal(self):
        change = self.Change.create({"lead_id": self.deal.id, "change_type": "other"})
        for field, value in (
            ("salesperson_id", self.user_other_salesman.id),
            ("team_id", self.team_2.id),
            ("description", "Rewritten"),
            ("amount_delta", 5000),
        ):
            with self.subTest(field=field), self._refused(UserError, "(?i)cannot be edited"):
                change.write({field: value})
        self.assertEqual(self.deal.user_id, self.user_sales_salesman)
        self.assertEqual(self.deal.team_id, self.sales_team_1)
        with self.assertRaises(AccessError):
            change.unlink()

    def test_copy_does_not_apply_again(self):
        change = self.Change.create(
            {"lead_id": self.deal.id, "change_type": "increase", "amount_delta": 100}
        )
        self.assertEqual(self.deal.expected_revenue, 1100)
        stays = len(self.deal.sudo().deal_log_ids)
        for user in (self.user_sales_salesman, self.user_admin):
            with self.subTest(user=user.login), self._refused(UserError, "(?i)copied"):
                self._as(user, change).copy()
        self.assertEqual(self.deal.expected_revenue, 1100)
        self.assertEqual(len(self.deal.deal_change_ids), 1)
        self.assertEqual(len(self.deal.sudo().deal_log_ids), stays)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractTemplate(DealContractCommon):
    """``crm.deal.script.action_create_from_template(team_id)``."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_new = cls.env["crm.team"].create({"name": "New team"})
        company_2 = cls.env["res.company"].create({"name": "Other company"})
        cls.team_company2 = cls.env["crm.team"].create(
            {"name": "Foreign team", "company_id": company_2.id}
        )

    def test_bad_team_ids(self):
        Script = self.env["crm.deal.script"].with_user(self.user_admin)
        scripts = Script.sudo().search_count([])
        team_c2 = self.team_company2
        for team_id in ("abc", None, [self.team_2.id], 999999, -3, 1.5, team_c2.id):
            with self.subTest(team_id=team_id), self._refused(CLEAR_ERRORS, "(?i)team"):
                Script.action_create_from_template(team_id)
        for template_id in ("abc", 999999, self.script.id, [1]):
            with (
                self.subTest(template_id=template_id),
                self._refused(CLEAR_ERRORS, "(?i)template"),
            ):
                Script.action_create_from_template(self.team_new.id, template_id)
        self.assertEqual(Script.sudo().search_count([]), scripts, "nothing created")

    def test_salesperson_cannot_instantiate(self):
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].with_user(
                self.user_sales_salesman
            ).action_create_from_template(self.team_new.id)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractDealFields(DealContractCommon):
    """``crm.lead``'s ``stage_id`` and ``deal_script_id`` as RPC sends them."""

    def test_bad_stage_values(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        for stage_id in ("abc", 999999, [self.stage_team1_2.id], -2):
            with (
                self.subTest(stage_id=stage_id),
                self._refused((UserError, ValidationError, MissingError), "(?i)stage"),
            ):
                deal.write({"stage_id": stage_id})
        with self._refused(CLEAR_ERRORS, "(?i)stage"):
            self.env["crm.lead"].with_user(self.user_sales_salesman).create(
                {"name": "Bad", "type": "opportunity", "stage_id": "abc"}
            )
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)

    def test_reference_checks_are_batched(self):
        # an import of many deals checks their stages and scripts at once
        Lead = self.env["crm.lead"]
        values = {"stage_id": str(self.stage_team1_1.id), "deal_script_id": self.script.id}
        Lead._deal_verified_references([values])  # the scripts' cached config, built once
        one, _result = self._count_queries(lambda: Lead._deal_verified_references([values]))
        many, result = self._count_queries(lambda: Lead._deal_verified_references([values] * 50))
        self.assertEqual(many, one)
        self.assertEqual(result[0]["stage_id"], self.stage_team1_1.id, "text made an id")

    def test_retired_script_not_assignable(self):
        draft = self.env["crm.deal.script"].browse(self.script.action_new_version())
        draft.with_user(self.user_admin).action_publish()
        self.assertEqual(self.script.state, "retired")
        new_deal = self._create_deal("New deal")
        self.assertEqual(new_deal.deal_script_id, draft)
        for user in (self.user_sales_salesman, self.user_admin):
            with (
                self.subTest(user=user.login),
                self._refused(ValidationError, "(?i)retired"),
            ):
                self._as(user, new_deal).write({"deal_script_id": self.script.id})
        self.assertEqual(new_deal.deal_script_id, draft)
        # the deals already on the retired version keep it (their own writes)
        self._as(self.user_sales_salesman, self.deal).write({"name": "Still on v1"})
        self.assertEqual(self.deal.deal_script_id, self.script)

    def test_stage_of_another_teams_pipeline_refused(self):
        # the form offers the team's pipeline only; RPC sends any stage id
        for user in (self.user_sales_salesman, self.user_leader, self.user_admin):
            with (
                self.subTest(user=user.login),
                self._refused(UserError, "(?i)pipeline of the sales team Test Sales Team"),
            ):
                self._as(user, self.deal).write({"stage_id": self.stage_team2_1.id})
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)
        self.assertEqual(self.deal.deal_step_id, self.script.step_ids[0])
        # the same stage is in the pipeline of a deal moving to that team, and
        # a stage of no team in every pipeline: both moves pass (gated as usual)
        shared = self.env["crm.stage"].create({"name": "Shared", "sequence": 50})
        for user, vals in (
            (self.user_admin, {"stage_id": self.stage_team2_1.id, "team_id": self.team_2.id}),
            (self.user_sales_salesman, {"stage_id": shared.id}),
        ):
            with self.subTest(user=user.login), self.env.cr.savepoint() as savepoint:
                self._as(user, self.deal).write(vals)
                self.assertEqual(self.deal.stage_id.id, vals["stage_id"])
                savepoint.rollback()

    def test_bad_script_values(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        for script_id in ("abc", 999999, [self.script.id]):
            with (
                self.subTest(script_id=script_id),
                self._refused(CLEAR_ERRORS, "(?i)script"),
            ):
                deal.write({"deal_script_id": script_id})
        self.assertEqual(self.deal.deal_script_id, self.script)

    def test_salesperson_cannot_take_another_teams_script(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        with self._refused(UserError, "(?i)team"):
            deal.write({"deal_script_id": self.script_2.id})
        self.assertEqual(self.deal.deal_script_id, self.script)
        Lead = self.env["crm.lead"].with_user(self.user_sales_salesman)
        with self._refused(UserError, "(?i)team"):
            Lead.create(
                {
                    "name": "Wrong script",
                    "type": "opportunity",
                    "team_id": self.sales_team_1.id,
                    "deal_script_id": self.script_2.id,
                }
            )
        # the team's own script, given explicitly, is fine
        deal = Lead.create(
            {"name": "Right script", "type": "opportunity", "deal_script_id": str(self.script.id)}
        )
        self.assertEqual(deal.deal_script_id, self.script)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractLost(DealContractCommon):
    """The lost reason of ``action_set_lost`` and of the Lost wizard."""

    def test_lost_reason_must_exist_and_be_active(self):
        archived = self.env["crm.lost.reason"].create({"name": "Old reason", "active": False})
        deal = self._as(self.user_sales_salesman, self.deal)
        for reason_id in (999999, archived.id, "abc", [1]):
            with (
                self.subTest(reason_id=reason_id),
                self._refused(CLEAR_ERRORS, "(?i)lost reason"),
            ):
                deal.action_set_lost(lost_reason_id=reason_id)
        self.assertTrue(self.deal.active)
        with self._refused(CLEAR_ERRORS, "(?i)lost reason"):
            self.env["crm.lead.lost"].with_user(self.user_sales_salesman).create(
                {"lead_ids": [self.deal.id], "lost_reason_id": archived.id}
            ).action_lost_reason_apply()
        self.assertTrue(self.deal.active)
        reason = self.env["crm.lost.reason"].create({"name": "Too expensive"})
        deal.action_set_lost(lost_reason_id=reason.id)
        self.assertFalse(self.deal.active)
        self.assertEqual(self.deal.lost_reason_id, reason)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractConfiguration(DealContractCommon):
    """Steps, scripts and checklists as a sales administrator writes them."""

    def _draft(self):
        return self.env["crm.deal.script"].browse(self.script.action_new_version())

    def test_sla_hours_bounded(self):
        draft = self._as(self.user_admin, self._draft())
        step = draft.step_ids[:1]
        for hours in (-1, 87601, 1e12, float("nan"), float("inf")):
            with self.subTest(hours=hours), self._refused(ValidationError, "87,?600"):
                step.write({"sla_hours": hours})
                step.env.flush_all()
            with self.subTest(hours=hours), self._refused(ValidationError, "87,?600"):
                draft.write({"sla_escalation_hours": hours, "sla_escalation_user_id": 2})
                draft.env.flush_all()
        step.sla_hours = 87600
        draft.write({"sla_escalation_hours": 87600, "sla_escalation_user_id": self.user_admin.id})
        self.assertEqual(step.sla_hours, 87600)

    def test_values_of_the_wrong_kind_named(self):
        # as an RPC client sends them: never a traceback, never a value
        # silently dropped (text for a stage used to empty the step's stage)
        draft = self._as(self.user_admin, self._draft())
        step = draft.step_ids[:1]
        stage = step.stage_id
        for target, vals, field in (
            (step, {"sla_hours": "abc"}, "Deadline"),
            (step, {"sequence": [1]}, "Sequence"),
            (step, {"stage_id": "abc"}, "Stage"),
            (step, {"stage_id": [stage.id]}, "Stage"),
            (step, {"back_step_ids": [(6, 0, ["x"])]}, "Return"),
            (step, {"back_step_ids": "abc"}, "Return"),
            (step, {"name": {"en_US": "x"}}, "Name"),
            (draft, {"team_ids": "abc"}, "Sales Teams"),
            (draft, {"sla_escalation_user_id": "nobody"}, "Sales Manager"),
        ):
            with (
                self.subTest(vals=vals),
                self._refused(ValidationError, f"(?i)not a valid value for “{field}"),
            ):
                target.write(vals)
        self.assertEqual(step.stage_id, stage)
        # an id as numeric text is an id, as for a deal's stage
        step.write({"stage_id": str(stage.id), "sequence": "7"})
        self.assertEqual((step.stage_id, step.sequence), (stage, 7))
        with self._refused(ValidationError, "(?i)not a valid value"):
            self.env["crm.deal.script.check"].with_user(self.user_admin).create(
                {"step_id": step.id, "name": "Signed", "sequence": "first"}
            )

    def test_checklist_names_required(self):
        draft = self._as(self.user_admin, self._draft())
        step = draft.step_ids[:1]
        Check = self.env["crm.deal.script.check"].with_user(self.user_admin)
        for name in ("", "   ", "\n\t"):
            with self.subTest(name=name), self._refused(ValidationError, "(?i)name"):
                Check.create({"step_id": step.id, "name": name})
        check = Check.create({"step_id": step.id, "name": "Signed"})
        with self._refused(ValidationError, "(?i)name"):
            check.name = "  "
        self.assertEqual(check.name, "Signed")

    def test_publish_step_map_unknown_keys(self):
        draft = self._as(self.user_admin, self._draft())
        with self._refused(UserError, "no_such_key"):
            draft.action_publish(
                in_flight="migrate", step_map={"no_such_key": self.step_1.step_key}
            )
        with self._refused(UserError, "(?i)keep"):
            draft.action_publish(
                in_flight="keep", step_map={self.step_1.step_key: self.step_1.step_key}
            )
        self.assertEqual(draft.state, "draft")
        self.assertEqual(self.script.state, "published")

    def test_step_form_readable_by_team_member(self):
        self.step_2.required_field_ids = self.env["ir.model.fields"]._get(
            "crm.lead", "expected_revenue"
        )
        for user in (self.user_sales_salesman, self.user_leader, self.user_admin):
            with self.subTest(user=user.login):
                form = Form(self._as(user, self.step_2))
                self.assertEqual(form.stage_id, self.stage_team1_2)
                self.assertEqual(len(form.required_field_ids), 1)
                self.assertNotIn("server_action_ids", form._view["fields"])
        admin = self.env.ref("base.user_admin")
        form = Form(self._as(admin, self.step_2))
        self.assertIn("server_action_ids", form._view["fields"])
        # narrowly: the deal's own fields, nothing of other models
        Fields = self.env["ir.model.fields"]
        partner_fields = [("model", "=", "res.partner")]
        self.assertFalse(Fields.with_user(self.user_sales_salesman).search(partner_fields))
        with self.assertRaises(AccessError):
            Fields.with_user(self.user_sales_salesman).browse(
                Fields._get("res.partner", "name").id
            ).read(["name"])
        with self.assertRaises(AccessError):
            self._as(self.user_admin, Fields._get("crm.lead", "name")).write({"help": "x"})
        # Access Rights administrators (also sales users here) keep every field
        self.assertTrue(Fields.with_user(admin).search(partner_fields))


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractSupervisorScope(DealContractCommon):
    """A team leader in the supervisor group sees the teams they lead."""

    def test_leader_sees_only_led_teams(self):
        colleague_deal = self._create_deal("Colleague deal", user_id=self.user_other_salesman.id)
        Lead = self.env["crm.lead"].with_user(self.user_leader)
        visible = Lead.search([("deal_script_id", "!=", False)])
        self.assertIn(colleague_deal, visible)
        self.assertNotIn(self.deal_team2, visible)
        with self.assertRaises(AccessError):
            self._as(self.user_leader, self.deal_team2).read(["name"])
        for model in (
            "crm.deal.stage.log",
            "crm.deal.step.stay.report",
            "crm.deal.step.time.report",
            "crm.deal.loss.report",
            "crm.deal.rework.report",
            "crm.deal.activity.report",
        ):
            with self.subTest(model=model):
                Model = self.env[model].with_user(self.user_leader)
                team_field = "lead_id.team_id" if "team_id" not in Model._fields else "team_id"
                self.assertFalse(Model.search([(team_field, "=", self.team_2.id)]))
                groups = Model._read_group([], [team_field], ["__count"])
                self.assertNotIn(self.team_2, [group[0] for group in groups])
        with self.assertRaises(AccessError):
            self._as(self.user_leader, self.deal_team2).action_deal_force_stage(
                self.stage_team2_1.id, "Not my team"
            )


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestContractMethods(DealContractCommon):
    """The other contract methods, called as RPC calls them."""

    def test_force_stage_bad_input(self):
        supervisor_deal = self._as(self.user_leader, self.deal)
        for stage_id, reason, pattern in (
            ("abc", "Why", "(?i)stage"),
            (999999, "Why", "(?i)stage"),
            ([self.stage_team1_2.id], "Why", "(?i)stage"),
            (self.stage_team2_1.id, "Why", "(?i)pipeline"),
            (self.stage_team1_2.id, ["Why"], "(?i)reason"),
        ):
            with self.subTest(stage_id=stage_id), self._refused(CLEAR_ERRORS, pattern):
                supervisor_deal.action_deal_force_stage(stage_id, reason)
        with self.assertRaises(AccessError):
            self._as(self.user_sales_salesman, self.deal).action_deal_force_stage(
                self.stage_team1_2.id, "Because"
            )
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)

    def test_one_record_methods_called_with_none_or_several(self):
        # RPC may call a button with no id or many: a clear error, no traceback
        scripts = self._as(self.user_admin, self.script | self.script_2)
        deal_2 = self._create_deal("Second deal")
        deals = self._as(self.user_sales_salesman, self.deal)
        check = self.deal.deal_check_ids[:1]
        for label, call in (
            ("new version", lambda records: records.action_new_version()),
            ("publish", lambda records: records.action_publish()),
            ("export", lambda records: records.export_definition()),
        ):
            for records in (scripts.browse(), scripts):
                with (
                    self.subTest(label, count=len(records)),
                    self._refused(UserError, "(?i)one record of “Deal Script” at a time"),
                ):
                    call(records)
        for records in (deals.browse(), deals | deal_2):
            with self.subTest(count=len(records)), self._refused(UserError, "(?i)at a time"):
                records.action_deal_tick_check(check.id)
            with self.subTest(count=len(records)), self._refused(UserError, "(?i)at a time"):
                records.action_deal_order_change()

    def test_engine_overrides_stay_private(self):
        # the history and totals override Odoo's flush_model: still not an
        # RPC method (Odoo marks it private on BaseModel)
        for model in ("crm.deal.stage.log", "crm.deal.step.total"):
            records = self.env[model].with_user(self.user_sales_salesman)
            with self.subTest(model=model), self.assertRaises(AccessError):
                get_public_method(records, "flush_model")

    def test_gate_info_and_ticks_bad_input(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        for stage_id in ("abc", 999999, None):
            with self.subTest(stage_id=stage_id), self._refused(CLEAR_ERRORS, "(?i)stage"):
                deal.get_deal_gate_info(stage_id)
        for check_id in ("abc", 999999):
            with self.subTest(check_id=check_id), self._refused(CLEAR_ERRORS, "(?i)checklist"):
                deal.action_deal_tick_check(check_id)

    def test_versions_bad_input(self):
        Script = self.env["crm.deal.script"]
        with self.assertRaises(AccessError):
            self._as(self.user_sales_salesman, self.script).action_new_version()
        script = self._as(self.user_admin, self.script)
        with self._refused(UserError, "(?i)only a draft"):
            script.action_publish()
        draft = self._as(self.user_admin, Script.browse(self.script.action_new_version()))
        with self._refused(UserError, "(?i)draft"):
            script.action_new_version()
        for in_flight, step_map in (("explode", None), ("migrate", ["a"]), ("migrate", {"a": 1})):
            with (
                self.subTest(in_flight=in_flight, step_map=step_map),
                self._refused(UserError, "(?i)in-flight|step map"),
            ):
                draft.action_publish(in_flight=in_flight, step_map=step_map)
        with self.assertRaises(AccessError):
            self._as(self.user_sales_salesman, draft).action_publish()
        self.assertEqual(draft.state, "draft")

    def test_activity_deadline_bounded(self):
        draft = self._as(
            self.user_admin,
            self.env["crm.deal.script"].browse(self.script.action_new_version()),
        )
        template = draft.step_ids.activity_template_ids[:1]
        for days in (-1, 3651, 2**40):
            with self.subTest(days=days), self._refused(ValidationError, "3,?650"):
                template.write({"deadline_days": days})
        template.deadline_days = 3650
        self.assertEqual(template.deadline_days, 3650)
