"""Attacks on the process as RPC callers make them (issue "The process cannot
be walked around"): a plain salesperson and a Sales Administrator without
Settings, ``with_user``, forged contexts, every field and public method."""

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import mute_logger

from .common import DealAttackCommon


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
        step = self._as(self.user_sales_admin, self._draft_step(self.step_1))
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
        with mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_auto_advance"):
            deal.write({"expected_revenue": 10})
            deal.sudo()._deal_auto_advance()
        self.assertEqual(deal.deal_step_id, self.step_1)
        self._assert_no_escalation()

    def test_editor_expressions_accepted(self):
        """What Odoo's domain editor writes stays accepted (no behaviour change)."""
        step = self._as(self.user_sales_admin, self._draft_step(self.step_1))
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
        # even at the first step, leaving the opportunities is a supervisor's...
        with self.assertRaises(UserError) as error:
            deal.write({"type": "lead"})
        self.assertIn("only a supervisor can take it out", str(error.exception))
        self.assertEqual(deal.deal_script_id, self.script)
        self._as(self.user_supervisor, self.deal).write({"type": "lead"})
        self.assertFalse(deal.deal_script_id)
        # ...and coming back straight into a later step is nobody's
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
        self.assertIn("only a supervisor can take it out", str(error.exception))
        self.assertEqual(deal.deal_script_id, self.script)

    @users("user_sales_salesman")
    def test_deal_taken_out_of_its_script_refused(self):
        """A deal without a script has no gate left: the salesperson cannot
        clear it, nor create a deal of a scripted team without it."""
        deal = self.deal.with_user(self.env.user)
        with self.assertRaises(UserError) as error:
            deal.write({"deal_script_id": False})
        self.assertIn("only a supervisor can take it out", str(error.exception))
        self.assertEqual(deal.deal_script_id, self.script)
        created = self.env["crm.lead"].create(
            {
                "name": "Without a script?",
                "type": "opportunity",
                "team_id": self.sales_team_1.id,
                "deal_script_id": False,
            }
        )
        self.assertEqual(created.deal_script_id, self.script)
        self.assertEqual(created.deal_step_id, self.step_1)
        with self.assertRaises(UserError):
            created.write({"stage_id": self.stage_prepayment.id})

    @users("user_sales_salesman")
    def test_script_cleared_and_set_again_refused(self):
        deal = self.deal.with_user(self.env.user)
        self._as(self.user_supervisor, self.deal).write({"deal_script_id": False})
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
    def test_script_sent_as_a_default_key_judged_as_a_value(self):
        # the context is the caller's: default_deal_script_id fills the script
        # of a new deal as a value would, and is judged as one
        team_x = self.env["crm.team"].sudo().create({"name": "Lax Team"})
        stage_x = self.env["crm.stage"].sudo().create({"name": "Lax", "team_ids": team_x.ids})
        lax = (
            self.env["crm.deal.script"]
            .sudo()
            .create(
                {
                    "name": "Lax process",
                    "team_ids": team_x.ids,
                    "step_ids": [Command.create({"sequence": 1, "stage_id": stage_x.id})],
                }
            )
        )
        vals = {"name": "fresh", "type": "opportunity", "team_id": self.sales_team_1.id}
        Lead = self.env["crm.lead"]
        with self.assertRaisesRegex(UserError, "not a script of the sales team"):
            Lead.with_context(default_deal_script_id=lax.id).create(vals)
        # a retired version drives no new deal, given as a key or as a value
        draft = self.env["crm.deal.script"].sudo().browse(self.script.sudo().action_new_version())
        draft.action_publish()
        with self.assertRaisesRegex(ValidationError, "retired version"):
            Lead.with_context(default_deal_script_id=self.script.id).create(vals)
        self.assertEqual(Lead.create(vals).deal_script_id, draft.sudo(False))

    @users("user_sales_salesman")
    def test_merge_keeps_the_kept_deal_s_script_activities_only(self):
        # Odoo moves the merged deals' activities onto the deal kept: their
        # script activities stand for steps of deals that are deleted
        deals = self.deal.with_user(self.env.user) | self._create_deals()
        wizard = (
            self.env["crm.merge.opportunity"]
            .with_context(active_model="crm.lead", active_ids=deals.ids)
            .create({"opportunity_ids": [Command.set(deals.ids)]})
        )
        wizard.action_merge()
        kept = deals.exists()
        self.assertEqual(len(kept), 1)
        self.assertEqual(kept.deal_step_id, self.step_1)
        self.assertEqual(
            sorted(kept.sudo().activity_ids.filtered("deal_step_id").mapped("summary")),
            ["Get the signed copy", "Send the contract"],
        )

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
