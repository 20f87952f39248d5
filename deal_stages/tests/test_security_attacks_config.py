"""Attacks on the process (issue "The process cannot be walked around"),
continued: activities, step configuration, public methods, companies,
deadlines and notifications. See ``test_security_attacks``."""

from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import FRIDAY_15, DealAttackCommon, DealSlaCommon


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

    def test_forged_script_activity_refused(self):
        """An activity a client links to a step (its template, its step) would
        stand for the one the step creates on entry, then be deleted: only the
        script links them."""
        self.step_2.require_activities_done = True
        deal = self._as(self.user_sales_salesman, self.deal)
        base = {
            "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
            "res_id": deal.id,
            "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
            "summary": "Invoice issued (forged)",
            "user_id": self.user_sales_salesman.id,
        }
        Activity = self.env["mail.activity"].with_user(self.user_sales_salesman)
        for link in (
            {"deal_script_activity_id": self.step_2.activity_template_ids.id},
            {"deal_step_id": self.step_2.id},
            {"deal_feedback_callback": True},
        ):
            with self.subTest(link=link), self.assertRaises(AccessError):
                Activity.create(dict(base, **link))
        # as default_* keys: a plain activity, linked to nothing
        forged = Activity.with_context(
            default_deal_script_activity_id=self.step_2.activity_template_ids.id,
            default_deal_step_id=self.step_2.id,
            default_deal_feedback_callback=True,
        ).create(base)
        self.assertRecordValues(
            forged.sudo(),
            [
                {
                    "deal_script_activity_id": False,
                    "deal_step_id": False,
                    "deal_feedback_callback": False,
                }
            ],
        )
        forged.unlink()  # a plain activity stays theirs
        for activity in self._required(deal):
            activity.with_user(activity.user_id).action_feedback("done")
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(
            self._script_activities(deal)
            .filtered(lambda act: act.deal_step_id == self.step_2)
            .mapped("summary"),
            ["Issue the invoice"],
        )

    def test_done_activities_count(self):
        deal = self._as(self.user_sales_salesman, self.deal)
        for activity in self._required(deal):
            activity.with_user(activity.user_id).action_feedback("done")
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_2)

    def test_someone_else_s_required_activity_done_by_its_assignee(self):
        # the team leader's "Get the signed copy" is theirs: the salesperson
        # marking it done would leave the step without it
        deal = self._as(self.user_sales_salesman, self.deal)
        own, leaders = (
            self._required(deal).filtered(lambda act, user=user: act.user_id == user)
            for user in (self.user_sales_salesman, self.user_sales_manager)
        )
        self.assertEqual(leaders.summary, "Get the signed copy")
        for attempt in (
            lambda act: act.action_feedback("done"),
            lambda act: act.action_done(),
            lambda act: deal.activity_feedback(["mail.mail_activity_data_upload_document"]),
        ):
            with self.subTest(attempt=attempt), self.assertRaises(UserError) as error:
                attempt(leaders.with_user(self.user_sales_salesman))
            self.assertIn("only they (or a supervisor)", str(error.exception))
        # nor given to oneself first
        with self.assertRaisesRegex(UserError, "can give it to someone else"):
            leaders.with_user(self.user_sales_salesman).write(
                {"user_id": self.user_sales_salesman.id}
            )
        self.assertEqual(leaders.user_id, self.user_sales_manager)
        own.with_user(self.user_sales_salesman).action_feedback("done")
        with self.assertRaises(UserError):
            deal.write({"stage_id": self.stage_team1_2.id})
        # its assignee (or a supervisor) does it: the deal moves on
        leaders.with_user(self.user_sales_manager).action_feedback("done")
        deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_2)

    def test_lost_and_restored_deal_still_waits_for_them(self):
        # the loss cancels the step's activities, not done: restored, the deal
        # gets them again (each once) and its gate waits for them
        deal = self._as(self.user_sales_salesman, self.deal)
        for __ in range(2):
            deal.action_set_lost()
            self.assertFalse(self._required(deal))
            deal.action_restore()
            self.assertEqual(
                sorted(self._required(deal).mapped("summary")),
                ["Get the signed copy", "Send the contract"],
            )
        with self.assertRaisesRegex(UserError, "as done"):
            deal.write({"stage_id": self.stage_team1_2.id})
        self.assertEqual(deal.deal_step_id, self.step_1)

    def test_supervisor_may_do_in_their_place(self):
        self._required(self.deal).with_user(self.user_supervisor).action_feedback("done")
        self.assertFalse(self._required(self.deal))

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
        step = self._as(self.user_sales_admin, self._draft_step(self.step_2))
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
        step = self._as(self.user_sales_admin, self._draft_step(self.step_2))
        for field in ("mail_template_id", "lost_mail_template_id"):
            with self.subTest(field=field), self.assertRaises(ValidationError):
                step.write({field: template.id})

    def test_required_field_of_another_model_refused(self):
        """A requirement the gate cannot check on a deal (another model's field,
        a field not stored) is refused, not silently dropped."""
        step = self._as(self.user_sales_admin, self._draft_step(self.step_2))
        Fields = self.env["ir.model.fields"]
        for field in (
            Fields._get("res.partner", "vat"),
            Fields.search([("model", "=", "crm.lead"), ("store", "=", False)], limit=1),
        ):
            with self.subTest(field=field.name), self.assertRaises(ValidationError) as error:
                step.write({"required_field_ids": [Command.link(field.id)]})
            self.assertIn("stored fields of the deal", str(error.exception))
        step.write({"required_field_ids": [Command.link(Fields._get("crm.lead", "email_from").id)]})

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

    def test_people_and_endpoints_of_another_company_refused(self):
        """A sales administrator of one company does not send its deals'
        hand-offs to another company's endpoint (with that company's secret
        and credentials), nor its escalations and activities to its users."""
        company_b = self.env["res.company"].create({"name": "Company B"})
        user_b = mail_new_test_user(
            self.env,
            login="user_company_b_only",
            groups="sales_team.group_sale_salesman",
            company_id=company_b.id,
            company_ids=[Command.set(company_b.ids)],
        )
        endpoint_b = self.env["crm.deal.handoff.endpoint"].create(
            {"name": "B's ERP", "url": "https://erp.b.example.com/", "company_id": company_b.id}
        )
        self.script.company_id = self.env.company
        step = self._as(self.user_sales_admin, self._draft_step(self.step_2))
        template = step.activity_template_ids[:1]
        endpoint_a = self.env["crm.deal.handoff.endpoint"].create(
            {"name": "A's ERP", "url": "https://erp.a.example.com/"}
        )
        for records, vals in (
            (step, {"handoff_endpoint_id": endpoint_b.id}),
            (endpoint_a.with_user(self.user_sales_admin), {"user_id": user_b.id}),
            (step.script_id, {"sla_escalation_user_id": user_b.id}),
            (template, {"assign_to": "user", "user_id": user_b.id}),
        ):
            with self.subTest(field=next(iter(vals))), self.assertRaises(UserError):
                records.write(vals)
        step.script_id.write({"sla_escalation_user_id": self.user_sales_leads.id})
        template.write({"assign_to": "user", "user_id": self.user_sales_salesman.id})


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackSla(DealAttackCommon):
    """L1: a change of nothing does not restart the step's clock."""

    @freeze_time("2026-11-09 09:00:00")
    def test_script_assigned_with_a_future_last_move_starts_now(self):
        # a script given to a deal where it stands starts at its last stage
        # move: a client's field, which must not hold the deadline off
        self.step_1.sla_hours = 24
        self._as(self.user_supervisor, self.deal).write({"deal_script_id": False})
        deal = self._as(self.user_sales_salesman, self.deal)
        deal.write(
            {"deal_script_id": self.script.id, "date_last_stage_update": "2099-01-01 00:00:00"}
        )
        self.assertEqual(self._open_stay(deal).date_in, datetime(2026, 11, 9, 9, 0))
        self.assertLess(deal.sudo().deal_sla_deadline, datetime(2026, 11, 13))

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
