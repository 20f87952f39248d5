from datetime import datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, tagged, users
from odoo.tools import mute_logger

from odoo.addons.deal_stages.models import crm_deal_script_version
from odoo.addons.deal_stages.tools import DealGateError

from .common import DealVersionCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionConfig(DealVersionCommon):
    def test_created_script_is_published_version_1_with_step_keys(self):
        self.assertEqual((self.script.version, self.script.state), (1, "published"))
        self.assertEqual(self.script.process_id, self.script)
        keys = self.script.step_ids.mapped("step_key")
        self.assertEqual(keys, ["new", "proposition", "prepayment"], "keys from the steps' names")
        self.assertEqual(self.sales_team_1.deal_script_id, self.script)
        draft = self.env["crm.deal.script"].create({"name": "Sketch", "state": "draft"})
        self.assertEqual(draft.state, "draft")

    @users("user_sales_manager")
    def test_published_refuses_behaviour_edits_and_accepts_texts(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        step = script.step_ids[0]
        refused = [
            lambda: step.write({"sla_hours": 5}),
            lambda: step.write({"stage_id": self.stage_gen_1.id}),
            lambda: step.write({"sequence": 99}),
            lambda: step.write({"back_step_ids": [Command.clear()]}),
            lambda: step.write({"auto_advance_domain": "[('probability', '>', 50)]"}),
            lambda: step.write({"required_field_ids": [Command.clear()]}),
            lambda: step.write({"mail_template_id": False, "mail_mode": "propose"}),
            lambda: step.write({"server_action_ids": [Command.clear()]}),
            lambda: step.write({"step_key": "other"}),
            lambda: step.check_ids[0].write({"required": False}),
            lambda: step.check_ids[0].unlink(),
            lambda: self.env["crm.deal.script.check"].create({"step_id": step.id, "name": "X"}),
            lambda: step.activity_template_ids[0].write({"deadline_days": 9}),
            lambda: step.activity_template_ids[0].unlink(),
            lambda: self.env["crm.deal.script.step"].create(
                {"script_id": script.id, "stage_id": self.stage_gen_1.id}
            ),
            lambda: step.unlink(),
            lambda: script.write({"strict_order": False}),
            lambda: script.write({"sla_warning_percent": 50}),
            lambda: script.write({"return_step_other_id": step.id}),
            lambda: script.write({"state": "draft"}),
        ]
        for index, change in enumerate(refused):
            with self.subTest(change=index), self.assertRaises(UserError) as caught:
                change()
        self.assertIn("New Version", str(caught.exception))
        # names, translations and texts stay editable
        script.write({"name": "Our process", "note": "<p>How we sell</p>"})
        step.write({"name": "Contract"})
        step.check_ids[0].name = "Contract signed"
        step.activity_template_ids[0].write({"summary": "Send it", "note": "<p>Today</p>"})
        step.update_field_translations("name", {"fr_FR": "Contrat"})
        self.assertEqual(step.name, "Contract")
        self.assertEqual(step.check_ids[0].name, "Contract signed")

    @users("user_sales_manager")
    def test_published_step_texts_editable_in_the_script_form(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        with Form(script) as form, form.step_ids.edit(0) as step:
            step.name = "Contract"
        self.assertEqual(script.step_ids.sorted("sequence")[0].name, "Contract")
        # the same over RPC, with the checklist item's name inside the step
        step = script.step_ids.sorted("sequence")[0]
        script.write(
            {
                "step_ids": [
                    Command.update(
                        step.id,
                        {
                            "name": "Signing",
                            "check_ids": [Command.update(step.check_ids[0].id, {"name": "Signed"})],
                        },
                    )
                ]
            }
        )
        self.assertEqual((step.name, step.check_ids[0].name), ("Signing", "Signed"))
        # what changes behaviour is still refused, whichever way it comes
        for command in (
            Command.update(step.id, {"sla_hours": 5}),
            Command.update(
                step.id, {"check_ids": [Command.update(step.check_ids[0].id, {"required": False})]}
            ),
            Command.update(step.id, {"activity_template_ids": [Command.clear()]}),
            Command.create({"stage_id": self.stage_gen_1.id}),
            Command.delete(step.id),
            Command.unlink(step.id),
            Command.clear(),
            Command.set([]),
        ):
            with self.subTest(command=command), self.assertRaisesRegex(UserError, "New Version"):
                script.write({"step_ids": [command]})
        self.assertEqual(len(script.step_ids), 3)
        self.assertEqual(step.sla_hours, 0)
        self.assertTrue(step.check_ids[0].required)

    @users("user_sales_salesman")
    def test_salesperson_cannot_manage_versions(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        with self.assertRaises(AccessError):
            script.action_new_version()
        with self.assertRaises(AccessError):
            script.action_publish()
        with self.assertRaises(AccessError):
            script.export_definition()
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].import_definition("{}")

    def test_new_version_is_a_draft_copy_and_one_per_process(self):
        draft = self._new_version()
        self.assertEqual((draft.version, draft.state), (2, "draft"))
        self.assertEqual(draft.previous_version_id, self.script)
        self.assertEqual(draft.process_id, self.script)
        self.assertEqual(draft.team_ids, self.script.team_ids)
        self.assertEqual(draft.step_ids.mapped("step_key"), self.script.step_ids.mapped("step_key"))
        self.assertEqual(draft.step_ids.mapped("stage_id"), self.script.step_ids.mapped("stage_id"))
        self.assertEqual(
            self._step(draft, "new").check_ids.mapped("name"),
            self.step_1.check_ids.mapped("name"),
        )
        self.assertEqual(
            self._step(draft, "prepayment").back_step_ids,
            self._step(draft, "new") | self._step(draft, "proposition"),
            "return steps point inside the draft",
        )
        with self.assertRaisesRegex(UserError, "already has a draft"):
            self._new_version()
        # a draft is edited freely and drives no deal
        self._step(draft, "new").sla_hours = 8
        deal = self._create_deals()
        self.assertEqual(deal.deal_script_id, self.script)
        with self.assertRaises(ValidationError):
            deal.deal_script_id = draft
        self.assertEqual(self.sales_team_1.deal_script_id, self.script)

    @users("user_sales_manager")
    def test_publish_validates_the_draft(self):
        draft = self._new_version()
        draft.step_ids.unlink()
        with self.assertRaisesRegex(UserError, "no step"):
            draft.action_publish()
        with self.assertRaises(UserError):
            draft.action_publish(in_flight="everything")
        self.assertEqual(draft.state, "draft")
        with self.assertRaises(UserError):
            self.env["crm.deal.script"].browse(self.script.id).action_publish()

    def test_retired_version_archived_only_without_deals_never_deleted_with_deals(self):
        deal = self._create_deals()
        draft = self._new_version()
        draft.with_user(self.user_sales_manager).action_publish()
        self.assertEqual(self.script.state, "retired")
        v1 = self.script.with_user(self.user_sales_manager)
        with self.assertRaises(ValidationError):
            v1.action_archive()
        with self.assertRaises(UserError):
            v1.unlink()
        deal.action_set_lost()
        v1.action_archive()
        self.assertFalse(v1.active)
        with self.assertRaises(UserError):
            v1.unlink()


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionPublish(DealVersionCommon):
    def test_keep_leaves_deals_on_their_version(self):
        deals = self._deals_in_three_steps()
        draft = self._new_version()
        draft.with_user(self.user_sales_manager).action_publish()
        self.assertEqual((self.script.state, draft.state), ("retired", "published"))
        self.assertEqual(deals.deal_script_id, self.script)
        self.assertEqual(self.sales_team_1.deal_script_id, draft)
        new_deal = self._create_deals()
        self.assertEqual(new_deal.deal_script_id, draft)
        self.assertEqual(new_deal.deal_step_id, self._step(draft, "new"))
        self.assertEqual(new_deal.deal_check_ids.check_id, self._step(draft, "new").check_ids)

    def test_deal_on_v1_obeys_v1_gate_after_v2_dropped_it(self):
        old_deal = self._create_deals()
        draft = self._new_version()
        self._step(draft, "new").check_ids.unlink()
        draft.with_user(self.user_sales_manager).action_publish()
        new_deal = self._create_deals()
        with self.assertRaises(DealGateError):
            old_deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        new_deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        self.assertEqual(new_deal.deal_step_id, self._step(draft, "proposition"))
        self._tick(old_deal, self.check_signed)
        old_deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        self.assertEqual(old_deal.deal_step_id, self.step_2, "still on version 1")

    def test_copy_of_a_deal_on_a_retired_version_follows_the_published_one(self):
        deal = self._create_deals()
        draft = self._new_version()
        draft.with_user(self.user_sales_manager).action_publish()
        copy = deal.with_user(self.user_sales_salesman).copy()
        self.assertEqual(deal.deal_script_id, self.script, "the original finishes on version 1")
        self.assertEqual(copy.deal_script_id, draft)
        self.assertEqual(copy.deal_step_id, self._step(draft, "new"))

    def test_migrate_moves_deals_with_history_sla_and_activities(self):
        self.script.sla_working_time = False
        start = datetime(2026, 3, 2, 9, 0)
        with freeze_time(start):
            deals = self._deals_in_three_steps()
            self._tick(deals[0], self.check_signed)
        draft = self._new_version()
        new_step_2 = self._step(draft, "proposition")
        new_step_2.sla_hours = 48
        new_step_2.activity_template_ids.summary = "Issue the invoice (v2)"
        self._step(draft, "prepayment").step_key = "payment"
        old_activities = self._script_activities(deals)
        last_message = self.env["mail.message"].sudo().search([], order="id desc", limit=1)
        moment = start + timedelta(hours=10)
        with freeze_time(moment):
            draft.with_user(self.user_sales_manager).action_publish(
                in_flight="migrate", step_map={"prepayment": "payment"}
            )
        self.assertEqual(deals.deal_script_id, draft)
        self.assertEqual(deals.mapped("deal_step_id.step_key"), ["new", "proposition", "payment"])
        self.assertEqual(draft.deal_migration_plan, False, "done in the request")
        for deal in deals:
            stays = deal.deal_log_ids.sorted("id")
            self.assertEqual(stays[-1].cause, "migrate")
            self.assertEqual(stays[-1].script_id, draft)
            self.assertEqual(stays[-1].date_in, moment)
            self.assertEqual(stays[-2].date_out, moment)
            self.assertEqual(len(deal.deal_log_ids.filtered(lambda s: s.cause == "migrate")), 1)
            notes = deal.message_ids.filtered(lambda m: m.id > last_message.id)
            self.assertEqual(len(notes), 1, "one note per deal")
            self.assertIn("version 2 of its process", notes.body)
        self.assertIn(
            "Issue the invoice (v2)",
            deals[1].message_ids[:1].body,
            "the note says what the new step did",
        )
        # the deadline counts the time already spent in the step
        self.assertEqual(deals[1].deal_sla_deadline, start + timedelta(hours=48))
        self.assertFalse(deals[0].deal_sla_deadline)
        # and so do the control board and the process bar, across the step
        # map ("prepayment" became "payment")
        with freeze_time(start + timedelta(days=3)):
            deals.invalidate_recordset(["deal_days_in_step", "deal_step_sla_days"])
            self.assertEqual(deals.mapped("deal_days_in_step"), [3, 3, 3])
            self.assertEqual(deals[1].deal_step_sla_days, 2.0, "48 h from the entry")
            for deal in deals:
                bar = {step["id"]: step["hours"] for step in deal._deal_guide_data()["steps"]}
                self.assertEqual(bar[deal.deal_step_id.id], 72.0, deal.name)
        # version 1's open activities are replaced by version 2's
        self.assertFalse(old_activities.exists().filtered("active"))
        new_activities = self._script_activities(deals)
        self.assertTrue(new_activities)
        self.assertEqual(new_activities.deal_script_activity_id.step_id.script_id, draft)
        self.assertIn("Issue the invoice (v2)", new_activities.mapped("summary"))
        # the ticked item carried over, by whom and when it was ticked
        carried = deals[0].deal_check_ids.filtered(
            lambda c: c.step_id.script_id == draft and c.name == "Signed contract attached"
        )
        ticked = deals[0].deal_check_ids.filtered(
            lambda c: c.step_id == self.step_1 and c.name == "Signed contract attached"
        )
        self.assertTrue(carried.done)
        self.assertEqual((carried.done_by_id, carried.done_date), (ticked.done_by_id, start))
        self.assertIn("Still ticked: Signed contract attached.", deals[0].message_ids[:1].body)
        self.assertFalse(
            deals[0]
            .deal_check_ids.filtered(lambda c: c.step_id.script_id == draft and not c.done)
            .check_id.filtered("required"),
            "the new step's gate is met by the carried item",
        )

    def test_migrate_refused_when_a_step_has_no_target(self):
        deals = self._deals_in_three_steps()
        draft = self._new_version()
        draft.return_step_other_id = False
        self._step(draft, "prepayment").unlink()
        with self.assertRaises(UserError) as caught:
            draft.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertIn(deals[2].name, str(caught.exception))
        self.assertIn("prepayment", str(caught.exception))
        self.assertEqual((self.script.state, draft.state), ("published", "draft"))
        self.assertEqual(deals.deal_script_id, self.script)
        # mapped explicitly, it goes
        draft.with_user(self.user_sales_manager).action_publish(
            in_flight="migrate", step_map={"prepayment": "proposition"}
        )
        self.assertEqual(deals[2].deal_step_id, self._step(draft, "proposition"))

    def test_migrate_refused_for_deals_of_a_team_the_new_version_drops(self):
        self._setup_team_b()
        deal_b = self._create_deals(team_id=self.sales_team_2.id)
        draft = self._new_version()
        draft.team_ids = [Command.unlink(self.sales_team_2.id)]
        with self.assertRaisesRegex(UserError, "not for the sales team Team B") as caught:
            draft.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertIn(deal_b.name, str(caught.exception))
        self.assertEqual((deal_b.deal_script_id, draft.state), (self.script, "draft"))

    def test_large_migration_finished_by_the_cron_in_batches(self):
        deals = self._create_deals(5)
        draft = self._new_version()
        with patch.object(crm_deal_script_version, "MIGRATE_INLINE_LIMIT", 2):
            draft.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertEqual(len(deals.filtered(lambda d: d.deal_script_id == draft)), 2)
        self.assertTrue(draft.deal_migration_plan)
        IrCron = type(self.env["ir.cron"])
        with patch.object(IrCron, "_commit_progress", lambda self, processed=0, **kw: 3600.0):
            self.env["crm.lead"]._cron_deal_migrate(batch_size=2)
        self.assertEqual(deals.deal_script_id, draft)
        self.assertFalse(draft.deal_migration_plan)
        self.assertEqual(len(deals.deal_log_ids.filtered(lambda s: s.cause == "migrate")), 5)

    def test_publishing_stops_the_migration_of_the_version_it_retires(self):
        deals = self._create_deals(4)
        v2 = self._new_version()
        with patch.object(crm_deal_script_version, "MIGRATE_INLINE_LIMIT", 2):
            v2.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertTrue(v2.deal_migration_plan, "two deals left for the cron")
        v3 = self._new_version(v2)
        v3.with_user(self.user_sales_manager).action_publish()
        self.assertFalse(v2.deal_migration_plan, "version 2 is retired: its migration stops")
        new_deal = self._create_deals()
        IrCron = type(self.env["ir.cron"])
        with patch.object(IrCron, "_commit_progress", lambda self, processed=0, **kw: 3600.0):
            self.env["crm.lead"]._cron_deal_migrate(batch_size=2)
        self.assertEqual(deals.deal_script_id.mapped("version"), [2, 1], "kept where they were")
        self.assertEqual(new_deal.deal_script_id, v3)

    def test_a_draft_published_late_gets_the_next_version_number(self):
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        draft = self._new_version()
        text = Script.browse(self.script.id).export_definition()
        imported = Script.browse(Script.import_definition(text))
        imported.action_publish()
        self.assertEqual((imported.version, imported.process_id), (3, self.script))
        draft.with_user(self.user_sales_manager).action_publish()
        self.assertEqual((draft.version, draft.state, imported.state), (4, "published", "retired"))

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_migration_sends_no_customer_message_again(self):
        self.step_2.write(
            {
                "mail_template_id": self.env.ref("deal_stages.mail_template_deal_production").id,
                "mail_mode": "auto",
            }
        )
        customer = self.env["res.partner"].create({"name": "Customer", "email": "c@example.com"})
        deal = self._create_deals(partner_id=customer.id, expected_revenue=100)
        self._tick(deal, self.check_signed)
        Mail = self.env["mail.mail"].sudo()
        deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        self.assertEqual(Mail.search_count([("recipient_ids", "in", customer.ids)]), 1)
        self._new_version().with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertEqual(deal.deal_step_id.script_id.version, 2)
        self.assertEqual(Mail.search_count([("recipient_ids", "in", customer.ids)]), 1, "told once")

    def test_migration_hands_no_order_off_again(self):
        endpoint = (
            self.env["crm.deal.handoff.endpoint"]
            .sudo()
            .create({"name": "ERP", "url": "https://erp.example.com/deals"})
        )
        self.step_2.write({"handoff_endpoint_id": endpoint.id, "handoff_required": True})
        customer = self.env["res.partner"].create({"name": "Customer"})
        deal = self._create_deals(partner_id=customer.id, expected_revenue=100)
        self._tick(deal, self.check_signed)
        deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        handoff = deal.sudo().deal_handoff_ids
        handoff.state = "acknowledged"
        draft = self._new_version()
        Wizard = self.env["crm.deal.script.publish"].with_user(self.user_sales_manager)
        wizard = Wizard.with_context(default_script_id=draft.id).create({})
        self.assertEqual(wizard.line_ids.gate_fail_count, 0, "the dry run counts it carried")
        draft.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertEqual(deal.sudo().deal_handoff_ids, handoff, "not handed off twice")
        self.assertEqual(handoff.step_id, self._step(draft, "proposition"))
        # its acknowledgement opens the new step's gate
        deal.with_user(self.user_sales_salesman).stage_id = self.stage_prepayment
        self.assertEqual(deal.deal_step_id, self._step(draft, "prepayment"))

    def test_parts_of_a_published_version_not_created_through_default_keys(self):
        Check = self.env["crm.deal.script.check"].with_user(self.user_sales_manager)
        Activity = self.env["crm.deal.script.activity"].with_user(self.user_sales_manager)
        context = {"default_step_id": self.step_1.id}
        # (the savepoint: what an RPC call's rollback does)
        with self.assertRaisesRegex(UserError, "New Version"), self.env.cr.savepoint():
            Check.with_context(**context).create({"name": "Injected"})
        with self.assertRaisesRegex(UserError, "New Version"), self.env.cr.savepoint():
            Activity.with_context(**context).create(
                {"activity_type_id": self.activity_type_todo.id, "summary": "Injected"}
            )
        self.assertFalse(self.env["crm.deal.script.check"].search([("name", "=", "Injected")]))


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionDryRun(DealVersionCommon):
    """The publish wizard's dry run, on the server: what it says the
    publication would do, that it changes nothing, and that the publication
    then does what it said."""

    def _snapshot(self, deals):
        """What a dry run must not change, as plain values."""
        deals.invalidate_recordset()
        return (
            [(d.deal_script_id.id, d.deal_step_id.id, d.stage_id.id) for d in deals],
            self.env["mail.activity"].sudo().search_count([("res_model", "=", "crm.lead")]),
            self.env["crm.deal.stage.log"].sudo().search_count([]),
            self.env["crm.deal.check"].sudo().search_count([]),
            self.env["mail.message"].sudo().search_count([("model", "=", "crm.lead")]),
            self.env["crm.deal.script"].with_context(active_test=False).search([]).mapped("state"),
        )

    def test_dry_run_reports_moves_gates_and_activities_and_changes_nothing(self):
        deals = self._deals_in_three_steps()
        self._tick(deals[0], self.check_signed)
        deals[1:].sudo().write({"partner_id": self.contact_1.id, "expected_revenue": 1000})
        lost = self._create_deals()
        lost.action_set_lost()
        draft = self._new_version()
        # version 2 asks more to leave the first step, and drops the last one
        self.env["crm.deal.script.check"].create(
            {"step_id": self._step(draft, "new").id, "name": "ID verified"}
        )
        draft.return_step_other_id = False
        self._step(draft, "prepayment").unlink()
        before = self._snapshot(deals | lost)
        Wizard = self.env["crm.deal.script.publish"].with_user(self.user_sales_manager)
        wizard = Wizard.with_context(default_script_id=draft.id).create({})
        self.assertEqual(wizard.previous_id, self.script)
        self.assertEqual(wizard.in_flight, "keep", "keeping them is the default")
        self.assertEqual(wizard.in_flight_count, 3, "the lost deal is not in flight")
        lines = {line.from_step_id.step_key: line for line in wizard.line_ids}
        self.assertEqual(set(lines), {"new", "proposition", "prepayment"})
        new, proposition, prepayment = lines["new"], lines["proposition"], lines["prepayment"]
        self.assertEqual(
            [(line.to_step_id, line.deal_count) for line in (new, proposition, prepayment)],
            [
                (self._step(draft, "new"), 1),
                (self._step(draft, "proposition"), 1),
                (self.env["crm.deal.script.step"], 1),
            ],
            "per step: how many deals go where (none for the dropped step)",
        )
        self.assertEqual(new.gate_fail_count, 1, "“ID verified” is not ticked")
        self.assertEqual(proposition.gate_fail_count, 0, "its fields are set")
        self.assertEqual(new.activity_create_count, 2, "version 2's two activities of step 1")
        self.assertEqual(new.activity_cancel_count, 2, "version 1's two open ones")
        self.assertEqual(proposition.activity_create_count, 1)
        self.assertEqual(proposition.activity_cancel_count, 1)
        self.assertEqual((prepayment.gate_fail_count, prepayment.activity_create_count), (0, 0))
        # the deals would stop at a step with no target: publishing says so
        wizard.in_flight = "migrate"
        with self.assertRaisesRegex(UserError, "No step of the new version for the step"):
            wizard.action_publish()
        # reading the dry run (and the refused publication) changed nothing
        self.assertEqual(self._snapshot(deals | lost), before)
        self.assertEqual(draft.state, "draft")

        # mapped by hand in the dry run, the publication does what it said
        prepayment.to_step_id = self._step(draft, "proposition")
        self.assertEqual(prepayment.deal_count, 1)
        old_open = self._script_activities(deals)
        wizard.action_publish()
        self.assertEqual(draft.state, "published")
        self.assertEqual(deals.deal_script_id, draft)
        self.assertEqual(
            [deal.deal_step_id.step_key for deal in deals], ["new", "proposition", "proposition"]
        )
        self.assertFalse(lost.deal_script_id == draft, "the lost deal is left alone")
        self.assertFalse(old_open.exists().filtered("active"), "the old ones cancelled")
        created = self._script_activities(deals).filtered(
            lambda a: a.deal_script_activity_id.step_id.script_id == draft
        )
        self.assertEqual(len(created.filtered(lambda a: a.res_id == deals[0].id)), 2)
        self.assertEqual(len(created.filtered(lambda a: a.res_id == deals[1].id)), 1)
        with self.assertRaises(DealGateError):
            deals[0].with_user(self.user_sales_salesman).stage_id = self.stage_team1_2

    def test_dry_run_with_keep_leaves_every_deal_unaffected(self):
        deals = self._deals_in_three_steps()
        draft = self._new_version()
        before = self._snapshot(deals)
        Wizard = self.env["crm.deal.script.publish"].with_user(self.user_sales_manager)
        wizard = Wizard.with_context(default_script_id=draft.id).create({})
        self.assertEqual(sum(wizard.line_ids.mapped("deal_count")), 3)
        self.assertEqual(self._snapshot(deals), before)
        wizard.action_publish()
        self.assertEqual(deals.deal_script_id, self.script, "kept on version 1")
        self.assertEqual(
            deals.deal_log_ids.filtered(lambda log: log.cause == "migrate"),
            self.env["crm.deal.stage.log"],
        )

    def test_publish_moves_deals_where_the_dry_run_says(self):
        v1_deal = self._create_deals()
        v2 = self._new_version()
        v2.with_user(self.user_sales_manager).action_publish()
        v2_deal = self._create_deals()
        v3 = self._new_version(v2)
        Wizard = self.env["crm.deal.script.publish"].with_user(self.user_sales_manager)
        wizard = Wizard.with_context(default_script_id=v3.id).create({"in_flight": "migrate"})
        v1_line, v2_line = wizard.line_ids.sorted(lambda line: line.from_version)
        # version 1's "new" somewhere else than version 2's: one key, one target
        v1_line.to_step_id = self._step(v3, "proposition")
        with self.assertRaisesRegex(UserError, "key new go to one step"):
            wizard.action_publish()
        # no target shown: no move
        v1_line.to_step_id = False
        with self.assertRaisesRegex(UserError, "No step of the new version for the step"):
            wizard.action_publish()
        self.assertEqual(v3.state, "draft")
        self.assertEqual((v1_deal | v2_deal).deal_script_id, self.script | v2)
        v1_line.to_step_id = v2_line.to_step_id = self._step(v3, "proposition")
        wizard.action_publish()
        self.assertEqual((v1_deal | v2_deal).mapped("deal_step_id"), self._step(v3, "proposition"))
