"""Attacks on the process as RPC callers make them (issue "The process cannot
be walked around"): a plain salesperson and a Sales Administrator without
Settings, ``with_user``, forged contexts, every field and public method."""

from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealStagesCommon
from .test_deal_sla import FRIDAY_15, DealSlaCommon


class DealAttackCommon(DealStagesCommon):
    """The common script; step 2 has a required checklist item and a
    deadline. ``deal`` is the salesperson's, at step 1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_sales_admin = mail_new_test_user(
            cls.env,
            login="user_sales_admin_no_settings",
            name="Sam Sales Admin",
            email="sam.admin@test.example.com",
            groups="sales_team.group_sale_manager",
        )
        cls.user_supervisor = mail_new_test_user(
            cls.env,
            login="user_attack_supervisor",
            name="Sue Supervisor",
            email="sue.supervisor@test.example.com",
            groups="sales_team.group_sale_salesman_all_leads,deal_stages.group_deal_supervisor",
        )
        cls.check_invoice_sent = cls.env["crm.deal.script.check"].create(
            {"step_id": cls.step_2.id, "name": "Invoice sent to the customer"}
        )
        cls.step_2.sla_hours = 24
        cls.deal = cls.env["crm.lead"].create(
            {
                "name": "Attacked deal",
                "type": "opportunity",
                "team_id": cls.sales_team_1.id,
                "user_id": cls.user_sales_salesman.id,
            }
        )
        cls.group_system = cls.env.ref("base.group_system")

    def _as(self, user, records):
        records = records.with_user(user)
        records.invalidate_recordset()
        return records

    def _open_stay(self, deal):
        return deal.sudo().deal_log_ids.filtered(lambda log: not log.date_out)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackConditions(DealAttackCommon):
    """C1: a condition is data; no record, environment or callable in it."""

    PAYLOADS = (
        (
            "[('id','!=',0)] if user.sudo().env['ir.config_parameter']"
            ".set_param('poc.deal_stages','pwned') or True else []"
        ),
        "[('id', '!=', user.sudo().write({'group_ids': [(4, %(group)s)]}) and 0)]",
        "[('id', '!=', user.id)]",
        "[('id', 'in', env['res.users'].sudo().search([]).ids)]",
        "[('name', '=', context_today().__class__.__name__)]",
        "[('name', '=', ''.__class__.__mro__[1].__subclasses__())]",
        "[('id', '!=', (lambda: 0)())]",
        "[('id', '=', datetime.datetime.now().year)]",
        "[('id', '=', time.time())]",
        "[('name', '=', 'x'.format(uid))]",
        "[('name', '=', '%%s' %% uid)]",
        "[('id', '!=', [x for x in range(3)])]",
        "[('id', '!=', relativedelta(days=uid).__init__)]",
    )

    def _payloads(self):
        return [payload % {"group": self.group_system.id} for payload in self.PAYLOADS]

    def _assert_no_escalation(self):
        self.assertFalse(self.env["ir.config_parameter"].get_param("poc.deal_stages"))
        self.assertNotIn(self.group_system, self.user_sales_admin.all_group_ids)

    def test_code_in_condition_refused_on_save(self):
        step = self._as(self.user_sales_admin, self.step_1)
        for payload in self._payloads():
            with self.subTest(payload=payload), self.assertRaises(ValidationError) as error:
                step.auto_advance_domain = payload
            self.assertIn("auto-advance condition of the step", str(error.exception))
        self._assert_no_escalation()

    def test_stored_code_never_runs(self):
        """A condition stored before (or by SQL) is not run either: refused, ignored."""
        payload = self._payloads()[0]
        self.env.cr.execute(
            "UPDATE crm_deal_script_step SET auto_advance_domain = %s WHERE id = %s",
            (payload, self.step_1.id),
        )
        self.step_1.invalidate_recordset(["auto_advance_domain"])
        self.env.registry.clear_cache()
        deal = self._as(self.user_sales_salesman, self.deal)
        with mute_logger("odoo.addons.deal_stages.models.crm_lead"):
            deal.write({"expected_revenue": 10})
            deal.sudo()._deal_auto_advance()
        self.assertEqual(deal.deal_step_id, self.step_1)
        self._assert_no_escalation()

    def test_editor_expressions_accepted(self):
        """What Odoo's domain editor writes stays accepted (no behaviour change)."""
        step = self._as(self.user_sales_admin, self.step_1)
        for condition in (
            "[('user_id', '=', uid)]",
            "[('date_deadline', '<=', context_today().strftime('%Y-%m-%d'))]",
            (
                "[('create_date', '>=',"
                " (context_today() - relativedelta(days=3)).strftime('%Y-%m-%d'))]"
            ),
            "['|', ('probability', '>=', 50.5), ('priority', 'in', ['2', '3'])]",
            "[('partner_id', '!=', False), ('expected_revenue', '>', -1)]",
        ):
            with self.subTest(condition=condition):
                step.auto_advance_domain = condition
                step._deal_auto_advance_condition().validate(self.env["crm.lead"])


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackContextDefaults(DealAttackCommon):
    """H1: ``default_*`` keys of the caller's context never shape the engine's rows."""

    @users("user_sales_salesman")
    def test_default_keys_on_an_allowed_move(self):
        deal = self.deal.with_user(self.env.user)
        deal.with_context(
            default_done=True,
            default_done_by_id=self.user_supervisor.id,
            default_done_date="2020-01-01 00:00:00",
            default_active=False,
            default_date_out="2000-01-01 00:00:00",
            default_sla_breached=True,
            default_cause="override",
            default_change_id=False,
        ).write({"stage_id": self.stage_team1_2.id})
        item = deal.sudo().deal_check_ids.filtered(lambda c: c.check_id == self.check_invoice_sent)
        self.assertTrue(item, "the step's checklist item is created")
        self.assertFalse(item.done, "born unticked")
        self.assertFalse(item.done_by_id)
        activities = self._script_activities(deal).filtered(
            lambda act: act.deal_step_id == self.step_2
        )
        self.assertEqual(activities.mapped("summary"), ["Issue the invoice"], "born open")
        stay = self._open_stay(deal)
        self.assertEqual(stay.step_id, self.step_2, "the deal has an open stay")
        self.assertFalse(stay.sla_breached)
        self.assertEqual(stay.cause, "move")
        self.assertTrue(deal.sudo().deal_sla_deadline, "the step's deadline started")

    @users("user_sales_salesman")
    def test_default_entry_done_does_not_skip_the_entry(self):
        deal = self.deal.with_user(self.env.user)
        deal.with_context(default_entry_done=True).write({"stage_id": self.stage_team1_2.id})
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))
        self.assertTrue(deal.sudo().deal_check_ids.filtered(lambda c: c.step_id == self.step_2))

    @users("user_sales_salesman")
    def test_default_engine_fields_on_create_refused(self):
        Lead = self.env["crm.lead"]
        for key, value in (
            ("default_deal_sla_next_check", "2000-01-01 00:00:00"),
            ("default_deal_sla_state", "ok"),
            ("default_deal_step_id", self.step_3.id),
            ("default_deal_applied_activity_ids", [self.step_2.activity_template_ids.ids]),
            ("default_access_token", "1"),
        ):
            with self.subTest(key=key), self.assertRaises(AccessError) as error:
                Lead.with_context(**{key: value}).create(
                    {"name": "x", "type": "opportunity", "team_id": self.sales_team_1.id}
                )
            self.assertIn("cannot be edited", str(error.exception))


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackEngineFields(DealAttackCommon):
    """H2: the fields the engine owns are refused to clients, create and write."""

    def _engine_values(self):
        return {
            "deal_step_id": self.step_3.id,
            "deal_progress": 100,
            "deal_applied_activity_ids": [
                Command.link(t.id) for t in self.step_2.activity_template_ids
            ],
            "deal_review_requested": True,
            "deal_sla_state": "ok",
            "deal_sla_deadline": "2099-01-01 00:00:00",
            "deal_sla_next_check": False,
            "access_token": "1",
        }

    def test_write_refused(self):
        for user in (self.user_sales_salesman, self.user_sales_admin, self.user_supervisor):
            deal = self._as(user, self.deal)
            for name, value in self._engine_values().items():
                with self.subTest(user=user.login, field=name):
                    with self.assertRaises(AccessError) as error:
                        deal.write({name: value})
                    self.assertIn("cannot be edited", str(error.exception))
        self.assertEqual(self.deal.deal_step_id, self.step_1)
        self.assertFalse(self.deal.deal_applied_activity_ids - self.step_1.activity_template_ids)

    @users("user_sales_salesman")
    def test_create_refused(self):
        for name, value in self._engine_values().items():
            with self.subTest(field=name), self.assertRaises(AccessError):
                self.env["crm.lead"].create(
                    {
                        "name": "x",
                        "type": "opportunity",
                        "team_id": self.sales_team_1.id,
                        name: value,
                    }
                )

    @users("user_sales_salesman")
    def test_forged_step_gives_no_forward_jump(self):
        deal = self.deal.with_user(self.env.user)
        with self.assertRaises(AccessError):
            deal.write({"deal_step_id": self.step_3.id})
        with self.assertRaises(UserError):
            self.env["crm.deal.order.change"].create(
                {
                    "lead_id": deal.id,
                    "change_type": "other",
                    "description": "x",
                    "return_step_id": self.step_3.id,
                }
            )
        self.assertEqual(deal.stage_id, self.stage_team1_1)
        # nor ticking the checklist of a step not reached yet
        with self.assertRaises(UserError):
            deal.action_deal_tick_check(self.check_invoice_sent.id)
        self.assertFalse(deal.sudo().deal_check_ids.filtered("done"))

    def test_engine_and_documents_still_write_them(self):
        """The trusted path is the system's (superuser), not a context key."""
        deal = self.deal.with_user(self.user_sales_salesman)
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertTrue(deal.sudo().deal_sla_deadline)
        self.assertEqual(deal.deal_progress, 67)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackScriptAssignment(DealAttackCommon):
    """H4 and M1: entering a script (create, copy, import, assignment) is a
    move from outside, judged like one."""

    @users("user_sales_salesman")
    def test_type_round_trip_refused(self):
        deal = self.deal.with_user(self.env.user)
        # at the first step, leaving the opportunities is still allowed...
        deal.write({"type": "lead"})
        self.assertFalse(deal.deal_script_id)
        # ...coming back straight into a later step is not
        with self.assertRaises(UserError) as error:
            deal.write({"stage_id": self.stage_prepayment.id, "type": "opportunity"})
        self.assertIn("Steps cannot be skipped", str(error.exception))
        deal.write({"type": "opportunity"})
        self.assertEqual(deal.deal_step_id, self.step_1)

    @users("user_sales_salesman")
    def test_leaving_the_process_past_the_first_step_refused(self):
        deal = self.deal.with_user(self.env.user)
        deal.sudo().deal_check_ids.write({"done": True})
        deal.write({"stage_id": self.stage_team1_2.id})
        with self.assertRaises(UserError) as error:
            deal.write({"type": "lead"})
        self.assertIn("only a supervisor can change its script", str(error.exception))
        self.assertEqual(deal.deal_script_id, self.script)

    @users("user_sales_salesman")
    def test_script_cleared_and_set_again_refused(self):
        deal = self.deal.with_user(self.env.user)
        deal.write({"deal_script_id": False})
        deal.write({"stage_id": self.stage_prepayment.id})
        with self.assertRaises(UserError) as error:
            deal.write({"deal_script_id": self.script.id})
        self.assertIn("Steps cannot be skipped", str(error.exception))
        with self.assertRaises(UserError):
            deal.write(
                {"deal_script_id": self.script.id, "date_last_stage_update": "2020-01-01 00:00:00"}
            )
        self.assertFalse(deal.deal_script_id)

    @users("user_sales_salesman")
    def test_template_script_refused(self):
        deal = self.deal.with_user(self.env.user)
        template = self.env.ref("deal_stages.deal_script_template_b2b")
        with self.assertRaises(ValidationError):
            deal.write({"deal_script_id": template.id})
        self.assertEqual(deal.deal_script_id, self.script)

    def test_supervisor_assigns_late_logged_override(self):
        deal = self.deal.with_user(self.user_supervisor)
        deal.write({"deal_script_id": False})
        deal.write({"stage_id": self.stage_prepayment.id})
        deal.write({"deal_script_id": self.script.id})
        self.assertEqual(deal.deal_step_id, self.step_3)
        self.assertEqual(self._open_stay(deal).cause, "override")

    @users("user_sales_salesman")
    def test_create_in_later_step_refused(self):
        Lead = self.env["crm.lead"]
        won = self.env["crm.stage"].search([("is_won", "=", True)], limit=1)
        for stage in (self.stage_prepayment, self.stage_team1_2, won):
            with self.subTest(stage=stage.name), self.assertRaises(UserError) as error:
                Lead.create(
                    {
                        "name": "fresh",
                        "type": "opportunity",
                        "team_id": self.sales_team_1.id,
                        "stage_id": stage.id,
                    }
                )
            self.assertIn("Steps cannot be skipped", str(error.exception))
        # at the first step, as always
        deal = Lead.create(
            {
                "name": "fresh",
                "type": "opportunity",
                "team_id": self.sales_team_1.id,
                "stage_id": self.stage_team1_1.id,
            }
        )
        self.assertEqual(deal.deal_step_id, self.step_1)

    @users("user_sales_salesman")
    def test_copy_into_later_step_refused(self):
        deal = self.deal.with_user(self.env.user)
        with self.assertRaises(UserError):
            deal.copy({"stage_id": self.stage_prepayment.id})
        self.assertEqual(deal.copy().deal_step_id, self.step_1)

    @users("user_sales_salesman")
    def test_import_into_later_step_refused(self):
        result = self.env["crm.lead"].load(
            ["name", "type", "team_id/.id", "stage_id/.id"],
            [["imported", "opportunity", str(self.sales_team_1.id), str(self.stage_prepayment.id)]],
        )
        self.assertFalse(result["ids"])
        self.assertIn("Steps cannot be skipped", str(result["messages"]))

    def test_sales_admin_imports_in_flight_deals_logged_override(self):
        Lead = self.env["crm.lead"].with_user(self.user_sales_admin)
        deal = Lead.create(
            {
                "name": "in flight",
                "type": "opportunity",
                "team_id": self.sales_team_1.id,
                "stage_id": self.stage_prepayment.id,
            }
        )
        self.assertEqual(deal.deal_step_id, self.step_3)
        self.assertEqual(self._open_stay(deal).cause, "override")


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackActivities(DealAttackCommon):
    """M2: "activities must be done" is met by doing them only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_1.require_activities_done = True
        cls.deal.sudo().deal_check_ids.write({"done": True})

    def _required(self, deal):
        return self._script_activities(deal).filtered(lambda act: act.deal_step_id == self.step_1)

    def test_cancel_archive_or_detach_refused(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        activities = self._required(deal).with_user(self.user_sales_salesman)
        self.assertEqual(len(activities), 2)
        for attempt, error_class in (
            (lambda acts: acts.unlink(), UserError),
            (lambda acts: acts.write({"active": False}), UserError),
            (lambda acts: acts.action_archive(), UserError),
            (lambda acts: acts.write({"deal_step_id": False}), AccessError),
            (lambda acts: acts.write({"deal_script_activity_id": False}), AccessError),
            (
                lambda acts: acts.write({"res_id": self.env["crm.lead"].search([], limit=1).id}),
                AccessError,
            ),
        ):
            with self.subTest(attempt=attempt), self.assertRaises(error_class):
                attempt(activities)
        self.assertEqual(len(self._required(deal)), 2)
        with self.assertRaises(UserError) as error:
            deal.write({"stage_id": self.stage_team1_2.id})
        self.assertIn("as done", str(error.exception))

    def test_done_activities_count(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        for activity in self._required(deal):
            activity.with_user(activity.user_id).action_feedback("done")
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_2)

    def test_supervisor_may_cancel(self):
        self._required(self.deal).with_user(self.user_supervisor).unlink()
        self.assertFalse(self._required(self.deal))

    def test_engine_cancels_left_steps_activities(self):
        """Leaving a step (a supervisor override here) cancels its activities as before."""
        self.deal.with_user(self.user_supervisor).action_deal_force_stage(
            self.stage_team1_2.id, "customer in a hurry"
        )
        self.assertFalse(self._required(self.deal))


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackStepConfiguration(DealAttackCommon):
    """M4 / M5: a step runs what its configuring user may use, as the mover."""

    def test_server_action_of_another_model_or_unreadable_refused(self):
        partner_action = self.env["ir.actions.server"].create(
            {
                "name": "Rename partners",
                "model_id": self.env["ir.model"]._get_id("res.partner"),
                "state": "code",
                "code": "records.write({'name': 'pwned'})",
            }
        )
        lead_action = self.env["ir.actions.server"].create(
            {
                "name": "Deal code",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'priority': '3'})",
            }
        )
        step = self._as(self.user_sales_admin, self.step_2)
        for action in (partner_action, lead_action):
            with self.subTest(action=action.name), self.assertRaises(AccessError):
                step.write({"server_action_ids": [Command.link(action.id)]})
        with self.assertRaises(ValidationError):
            self.step_2.server_action_ids = partner_action
        self.assertFalse(self.step_2.server_action_ids)

    def test_server_actions_run_as_the_mover(self):
        action = self.env["ir.actions.server"].create(
            {
                "name": "Who runs me",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "records.write({'referred': 'su=%s' % env.su})",
            }
        )
        self.step_2.server_action_ids = action
        deal = self._as(self.user_sales_salesman, self.deal)
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.referred, "su=False")

    def test_template_of_another_model_refused(self):
        template = self.env["mail.template"].create(
            {
                "name": "Users",
                "model_id": self.env["ir.model"]._get_id("res.users"),
                "body_html": "<p>{{ object.login }}</p>",
            }
        )
        step = self._as(self.user_sales_admin, self.step_2)
        for field in ("mail_template_id", "lost_mail_template_id"):
            with self.subTest(field=field), self.assertRaises(ValidationError):
                step.write({field: template.id})

    def _broken_template(self):
        template = self.env["mail.template"].create(
            {
                "name": "Broken",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "subject": "Order {{ object.name }}",
                "body_html": "<p>Hello</p>",
                "use_default_to": True,
            }
        )
        # broken since it was saved (e.g. what it used went with an add-on)
        self.env.cr.execute(
            "UPDATE mail_template SET subject = %s WHERE id = %s",
            ['{"en_US": "Order {{ 1 / 0 }}"}', template.id],
        )
        template.invalidate_recordset(["subject"])
        return template

    def _repair_activities(self, deal):
        return (
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("res_id", "=", deal.id),
                    ("summary", "like", "Repair the deal automation"),
                ]
            )
        )

    def test_broken_side_effects_do_not_block_the_move(self):
        crash = self.env["ir.actions.server"].create(
            {
                "name": "Crash",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "1 / 0",
            }
        )
        self.step_2.write(
            {
                "mail_template_id": self._broken_template().id,
                "mail_mode": "auto",
                "server_action_ids": [Command.link(crash.id)],
            }
        )
        customer = self.env["res.partner"].create({"name": "C", "email": "c@example.com"})
        self.deal.partner_id = customer
        deal = self._as(self.user_sales_salesman, self.deal)
        with mute_logger(
            "odoo.addons.deal_stages.models.crm_lead_deal_security",
            "odoo.addons.mail.models.mail_render_mixin",
        ):
            deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_2, "the move went through")
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))
        notes = " ".join(deal.sudo().message_ids.mapped("body"))
        self.assertIn("Broken", notes)
        self.assertIn("Crash", notes)
        repairs = self._repair_activities(deal)
        self.assertEqual(len(repairs), 2, "one per kind of failure")
        self.assertEqual(repairs.user_id, self.sales_team_1.user_id)
        # the same failures again: no second activity of the same kind
        deal.sudo().write({"stage_id": self.stage_team1_1.id})
        deal.sudo().write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(len(self._repair_activities(deal)), 2)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackPublicMethods(DealAttackCommon):
    """L4: wrong types, missing ids and foreign records get a clear error."""

    @users("user_sales_salesman")
    def test_gate_info_bad_input(self):
        deal = self.deal.with_user(self.env.user)
        for value in ("abc", [1, 2], None, 1.5, {"id": 1}):
            with self.subTest(value=value), self.assertRaises(UserError):
                deal.get_deal_gate_info(value)
        with self.assertRaises(MissingError):
            deal.get_deal_gate_info(999999999)
        with self.assertRaises(MissingError):
            self.env["crm.lead"].browse(999999999).get_deal_gate_info(self.stage_team1_2.id)
        info = deal.get_deal_gate_info(str(self.stage_team1_2.id))
        self.assertEqual(info["stage_id"], self.stage_team1_2.id)

    def test_force_stage_bad_input(self):
        deal = self._as(self.user_supervisor, self.deal)
        other_team = self.env["crm.team"].create({"name": "Elsewhere"})
        foreign_stage = self.env["crm.stage"].create(
            {"name": "Other pipeline", "team_ids": [other_team.id]}
        )
        for stage_id, reason, error_class in (
            ("abc", "r", UserError),
            ([1, 2], "r", UserError),
            (None, "r", UserError),
            (self.stage_team1_2.id, 5, UserError),
            (self.stage_team1_2.id, ["r"], UserError),
            (999999999, "r", MissingError),
            (foreign_stage.id, "r", UserError),
        ):
            with self.subTest(stage=stage_id, reason=reason), self.assertRaises(error_class):
                deal.action_deal_force_stage(stage_id, reason)
        self.assertEqual(self.deal.stage_id, self.stage_team1_1)
        self.assertEqual(self.deal.deal_script_id, self.script)

    @users("user_sales_salesman")
    def test_tick_check_bad_input(self):
        deal = self.deal.with_user(self.env.user)
        for value in ("x", None, [1]):
            with self.subTest(value=value), self.assertRaises(UserError):
                deal.action_deal_tick_check(value)
        with self.assertRaises(MissingError):
            deal.action_deal_tick_check(999999999)

    def test_group_order_bad_input(self):
        Log = self.env["crm.deal.stage.log"].with_user(self.user_sales_salesman)
        groups = Log.formatted_read_group([], ["step_id"], ["__count"], order="step_id,")
        self.assertIsInstance(groups, list)

    def test_forged_collector_context(self):
        deal = self._as(self.user_sales_salesman, self.deal).with_context(deal_engine_collector=1)
        deal.sudo().deal_check_ids.write({"done": True})
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))

    def test_forged_nested_flag_does_not_stop_auto_advance(self):
        self.step_1.auto_advance_domain = "[('expected_revenue', '>', 0)]"
        deal = self._as(self.user_sales_salesman, self.deal)
        deal.with_context(deal_nested_write=True).write({"expected_revenue": 500})
        self.assertEqual(deal.deal_step_id, self.step_2)

    def test_employee_cannot_rate_in_the_customers_place(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        with self.assertRaises(AccessError):
            deal.rating_apply(5, token="whatever")


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackCompanies(DealAttackCommon):
    """M6: activity templates stay within their company."""

    def test_activity_templates_of_another_company_hidden(self):
        company_b = self.env["res.company"].create({"name": "Company B"})
        team_b = self.env["crm.team"].create({"name": "Team B", "company_id": company_b.id})
        stage_b = self.env["crm.stage"].create({"name": "B stage", "team_ids": [team_b.id]})
        script_b = self.env["crm.deal.script"].create(
            {
                "name": "B process",
                "company_id": company_b.id,
                "team_ids": [team_b.id],
                "step_ids": [
                    Command.create(
                        {
                            "stage_id": stage_b.id,
                            "activity_template_ids": [
                                Command.create({"summary": "Secret of company B"})
                            ],
                        }
                    )
                ],
            }
        )
        template_b = script_b.step_ids.activity_template_ids
        for user in (self.user_sales_salesman, self.user_sales_admin):
            Template = self.env["crm.deal.script.activity"].with_user(user)
            with self.subTest(user=user.login):
                self.assertNotIn("Secret of company B", Template.search([]).mapped("summary"))
                with self.assertRaises(AccessError):
                    template_b.with_user(user).unlink()


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackSla(DealAttackCommon):
    """L1: a change of nothing does not restart the step's clock."""

    def test_zero_amount_change_to_current_step_keeps_deadline(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        deal.sudo().deal_check_ids.write({"done": True})
        with freeze_time("2026-11-09 09:00:00"):
            deal.write({"stage_id": self.stage_team1_2.id})
            deadline = deal.sudo().deal_sla_deadline
        with freeze_time("2026-11-10 08:00:00"):
            self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
                {
                    "lead_id": deal.id,
                    "change_type": "other",
                    "description": ".",
                    "return_step_id": self.step_2.id,
                }
            )
        deal.invalidate_recordset()
        self.assertEqual(deal.sudo().deal_sla_deadline, deadline)
        self.assertEqual(deal.deal_step_id, self.step_2)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackNotifications(DealAttackCommon):
    """L5: digests and guides show only what the reader may read."""

    def test_team_leader_without_supervision_gets_no_team_section(self):
        leader = mail_new_test_user(
            self.env,
            login="plain_leader",
            name="Plain Leader",
            email="plain.leader@test.example.com",
            groups="sales_team.group_sale_salesman",
        )
        self.sales_team_1.user_id = leader
        self.deal.activity_schedule(
            "mail.mail_activity_data_todo", user_id=self.user_sales_salesman.id
        )
        today = datetime.now().date() + timedelta(days=1)
        content = leader._deal_digest_contents({leader.id: today})[leader.id]
        self.assertFalse(content["teams"])

    def test_guide_hides_server_action_names(self):
        self.step_2.server_action_ids = self.env["ir.actions.server"].create(
            {
                "name": "Secret admin action",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": "pass",
            }
        )
        deal = self._as(self.user_sales_salesman, self.deal)
        self.assertNotIn("Secret admin action", str(deal._deal_guide_data()))


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackSlaCron(DealSlaCommon):
    """M8: one deal whose escalation fails does not stop the others'."""

    def test_failing_deal_is_skipped_and_reported(self):
        broken_user = mail_new_test_user(
            self.env,
            login="broken_tz",
            name="Broken Timezone",
            email="broken@test.example.com",
            groups="sales_team.group_sale_salesman",
        )
        with freeze_time(FRIDAY_15):
            good = self._create_deals()
            broken = self._create_deals(user_id=broken_user.id)
        # e.g. a timezone removed from the system: the escalation raises
        self.env.cr.execute(
            "UPDATE res_partner SET tz = 'Mars/Olympus' WHERE id = %s", (broken_user.partner_id.id,)
        )
        self.env.invalidate_all()
        with (
            freeze_time("2026-11-10 09:48:00"),
            mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security"),
        ):
            self._run_cron()
        self.assertEqual(good.deal_sla_state, "warning")
        self.assertTrue(self._sla_activities(good, "Deadline approaching"))
        self.assertEqual(broken.deal_sla_level, 0)
        self.assertEqual(broken.deal_sla_next_check, datetime(2026, 11, 10, 10, 48))
        self.assertIn("escalation", " ".join(broken.message_ids.mapped("body")))
