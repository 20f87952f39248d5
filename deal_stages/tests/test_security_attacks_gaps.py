"""Attacks left after the first hardening pass (issue 15, audit L7, L8, M3
second half in the account bridge, the version links, the hand-offs of
closed deals, the acknowledgement's input, the breach note's readers)."""

import json
from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import FRIDAY_15, DealAttackCommon, DealHandoffCommon, DealSlaCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackScriptStructure(DealAttackCommon):
    """L7 / L8 and the version links: a sales administrator edits the process,
    never the history of the deals that went through it."""

    def _publish_new_version(self, in_flight="keep"):
        draft = self.env["crm.deal.script"].browse(self.script.action_new_version())
        draft.with_user(self.user_sales_admin).action_publish(in_flight=in_flight)
        return draft

    def test_script_left_by_its_deals_cannot_be_deleted(self):
        # L7: the deal went through version 1, then migrated to version 2:
        # version 1 has no deal left, but its steps are in the deal's history
        self.deal._deal_move_context("move", skip_gate=True).stage_id = self.stage_team1_2
        draft = self._publish_new_version(in_flight="migrate")
        self.assertEqual(self.deal.deal_script_id, draft)
        v1 = self.script.with_user(self.user_sales_admin)
        with self.assertRaisesRegex(UserError, "history of the deal"):
            v1.unlink()
        self.assertTrue(self.script.exists())
        self.assertEqual(
            self.deal.sudo().deal_log_ids.filtered(lambda s: s.script_id == self.script).step_id,
            self.step_1 | self.step_2,
        )
        # archiving is the way
        v1.action_archive()
        self.assertFalse(self.script.active)

    def test_script_of_lost_deals_with_order_changes_cannot_be_deleted(self):
        # L7: only lost deals, one with an order change naming a step (a raw
        # foreign key error before)
        self.deal._deal_move_context("move", skip_gate=True).stage_id = self.stage_team1_2
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": self.deal.id, "change_type": "other", "description": "New address"}
        )
        reason = self.env["crm.lost.reason"].create({"name": "Too expensive"})
        self.deal.with_user(self.user_sales_salesman).action_set_lost(lost_reason_id=reason.id)
        self.assertFalse(self.deal.active)
        with self.assertRaisesRegex(UserError, "(?i)archive it instead"):
            self.script.with_user(self.user_sales_admin).unlink()
        self.assertTrue(self.script.exists())

    def test_structure_of_a_running_version_is_fixed(self):
        # L8 (covered by issue 16: a published or retired version is fixed,
        # see test_deal_version.test_published_refuses_behaviour_edits_and_accepts_texts):
        # the sales administrator cannot point a step with deals at another
        # stage or reorder it, on the published version nor on a retired one
        self.deal._deal_move_context("move", skip_gate=True).stage_id = self.stage_team1_2
        self._publish_new_version(in_flight="keep")
        self.assertEqual(self.script.state, "retired")
        step = self._as(self.user_sales_admin, self.step_2)
        for vals in (
            {"stage_id": self.stage_team1_1.id},
            {"sequence": 0},
            {"script_id": self.env["crm.deal.script"].create({"name": "X", "state": "draft"}).id},
        ):
            with self.subTest(vals=vals), self.assertRaises(UserError):
                step.write(vals)
        self.assertEqual(self.deal.deal_step_id, self.step_2)

    def test_parts_added_to_a_running_version_through_default_keys_refused(self):
        # default_* keys of the caller's context fill the step (or script) a
        # new part belongs to: a published version stays fixed for them too
        self.assertEqual(self.script.state, "published")
        for model, key, parent, vals in (
            ("crm.deal.script.check", "default_step_id", self.step_2, {"name": "Extra item"}),
            (
                "crm.deal.script.activity",
                "default_step_id",
                self.step_2,
                {"activity_type_id": self.activity_type_todo.id, "summary": "Extra activity"},
            ),
            (
                "crm.deal.script.step",
                "default_script_id",
                self.script,
                {"name": "Extra step", "stage_id": self.stage_gen_1.id},
            ),
        ):
            Model = self.env[model].with_user(self.user_sales_admin)
            with self.subTest(model=model), self.assertRaisesRegex(UserError, "fixed"):
                Model.with_context(**{key: parent.id}).create(vals)
        self.assertEqual(len(self.step_2.check_ids), 1)
        self.assertEqual(len(self.script.step_ids), 3)

    def test_version_links_are_the_engine_s(self):
        # item 7: process_id / previous_version_id are set by "New Version" and
        # "Publish" only (readonly in the view, writable over RPC before)
        Script = self.env["crm.deal.script"].with_user(self.user_sales_admin)
        other = Script.create({"name": "Other process", "state": "draft"})
        draft = self.env["crm.deal.script"].browse(self.script.action_new_version())
        self.assertEqual(draft.process_id, self.script)
        for record in (self._as(self.user_sales_admin, draft), other):
            for vals in (
                {"process_id": other.id if record == draft else self.script.id},
                {"previous_version_id": self.script.id},
                {"deal_migration_plan": json.dumps({"step_map": {}})},
            ):
                with self.subTest(record=record.name, vals=vals), self.assertRaises(UserError):
                    record.write(vals)
        self.assertEqual(draft.process_id, self.script)
        self.assertEqual(other.process_id, other)
        for vals in ({"process_id": self.script.id}, {"deal_migration_plan": "{}"}):
            with self.subTest(vals=vals), self.assertRaises(UserError):
                Script.create({"name": "Forged version", "state": "draft", **vals})
        # the caller's default_* keys do not make a version of another process
        for context in (
            {"default_process_id": self.script.id},
            {"default_previous_version_id": self.script.id},
            {"default_version": 7},
            {"default_deal_migration_plan": json.dumps({"step_map": {}})},
        ):
            with self.subTest(context=context), self.assertRaises(UserError):
                Script.with_context(**context).create({"name": "Forged version"})
        self.assertFalse(
            self.env["crm.deal.script"].search([("name", "=", "Forged version")]),
        )
        # the menu's default_state (a draft) stays allowed
        sketch = Script.with_context(default_state="draft").create({"name": "Sketch"})
        self.assertEqual((sketch.version, sketch.process_id), (1, sketch))

    def test_review_page_is_a_web_address(self):
        # Info: the review page goes into a customer email
        draft = self._as(
            self.user_sales_admin,
            self.env["crm.deal.script"].browse(self.script.action_new_version()),
        )
        for url in ("javascript:alert(document.cookie)", "data:text/html,<b>x</b>", "ftp://x"):
            with self.subTest(url=url), self.assertRaises(ValidationError):
                draft.write({"review_url": url})
        draft.write({"review_url": "https://reviews.example.com/our-company"})
        self.assertEqual(draft.review_url, "https://reviews.example.com/our-company")

    def test_wizards_of_other_users_hidden(self):
        """Odoo gives a wizard's rows to every user of its access rights: the
        deal, amount and text of another salesperson's order change, another
        administrator's process file stay theirs."""
        other = mail_new_test_user(
            self.env, login="user_wizard_other", groups="sales_team.group_sale_salesman"
        )
        other_admin = mail_new_test_user(
            self.env, login="user_wizard_other_admin", groups="sales_team.group_sale_manager"
        )
        change = (
            self.env["crm.deal.order.change.wizard"]
            .with_user(self.user_sales_salesman)
            .create(
                {
                    "lead_id": self.deal.id,
                    "change_type": "other",
                    "description": "Discount for the director",
                    "return_step_id": self.step_1.id,
                }
            )
        )
        export = self.env["crm.deal.script.definition"].browse(
            self.script.with_user(self.user_sales_admin).action_open_export_definition()["res_id"]
        )
        for wizard, user, vals in (
            (change, other, {"description": "Nothing"}),
            (export, other_admin, {"filename": "x.json"}),
        ):
            with self.subTest(model=wizard._name):
                self.assertFalse(wizard.with_user(user).search([]))
                with self.assertRaises(AccessError):
                    wizard.with_user(user).read(["create_uid"])
                with self.assertRaises(AccessError):
                    wizard.with_user(user).write(vals)
        self.assertEqual(change.with_user(self.user_sales_salesman).search([]), change)
        self.assertTrue(export.with_user(self.user_sales_admin).file)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackChecklistOfOtherSteps(DealAttackCommon):
    """Items are ticked in their step, through the item as through the
    deal's button: not those of a step the deal left or went back from."""

    def test_item_of_a_step_left_not_ticked(self):
        deal = self.deal.with_user(self.user_supervisor)
        deal.action_deal_force_stage(self.stage_team1_2.id, "customer in a hurry")
        item = self.deal.sudo().deal_check_ids.filtered(lambda c: c.step_id == self.step_2)
        deal.action_deal_force_stage(self.stage_prepayment.id, "invoice follows")
        self.assertEqual(self.deal.deal_step_id, self.step_3)
        own = item.with_user(self.user_sales_salesman)
        with self.assertRaisesRegex(UserError, "not on the checklist of the deal's step"):
            own.write({"done": True})
        with self.assertRaisesRegex(UserError, "not on the checklist of the deal's step"):
            self.deal.with_user(self.user_sales_salesman).write(
                {"deal_check_ids": [Command.update(item.id, {"done": True})]}
            )
        self.assertFalse(item.done)
        # back to step 2 (an order change): its item is ticked there
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {
                "lead_id": self.deal.id,
                "change_type": "other",
                "description": "Another colour",
                "return_step_id": self.step_2.id,
            }
        )
        own.write({"done": True})
        self.assertTrue(item.done)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackHandoffClosedDeal(DealHandoffCommon):
    """Issue 17: the order of a lost or archived deal is not handed off."""

    def test_lost_deal_cancels_its_pending_handoffs(self):
        self.receiver.state.accept = True
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.assertEqual(handoff.state, "pending")
        deal.with_user(self.user_sales_salesman).action_set_lost()
        self.assertEqual(handoff.state, "cancelled")
        self.assertFalse(handoff.next_attempt)
        self.assertTrue(
            deal.message_ids.filtered(lambda m: "the deal was lost or archived" in m.body)
        )
        self._deliver()
        self.assertFalse(self.receiver.state.stored, "nothing reaches the receiver")
        # restored: the cancelled hand-off stays cancelled (its key is never
        # sent); the step's entry hands the order off again, as a new one
        deal.with_user(self.user_sales_salesman).action_restore()
        self.assertEqual(handoff.state, "cancelled")
        new = deal.deal_handoff_ids - handoff
        self.assertEqual(len(new), 1)
        self.assertEqual(new.state, "pending")
        self.assertNotEqual(new.idempotency_key, handoff.idempotency_key)
        self._deliver()
        self.assertEqual(list(self.receiver.state.stored), [new.idempotency_key])

    def test_archived_deal_cancels_failed_handoffs_keeps_sent_ones(self):
        deal, other = self._deal_at_step_2(), self._deal_at_step_2()
        failed, sent = deal.deal_handoff_ids, other.deal_handoff_ids
        failed.sudo().state = "failed"
        sent.sudo().state = "sent"
        (deal | other).with_user(self.user_sales_salesman).action_archive()
        self.assertEqual(failed.state, "cancelled", "a person need not repair it any more")
        self.assertEqual(sent.state, "sent", "the receiver has it already")

    def test_endpoint_url_changed_by_administrators_only(self):
        """The requests carry the endpoint's secret and headers (the receiver's
        credentials): a sales administrator pointing it at their own server
        would receive them."""
        self.endpoint.extra_headers = '{"Authorization": "Basic c2VjcmV0"}'
        url = self.endpoint.url
        endpoint = self.endpoint.with_user(self.user_sales_manager)
        with self.assertRaisesRegex(AccessError, "Only administrators"):
            endpoint.write({"url": "https://attacker.example.com/hook"})
        self.assertEqual(self.endpoint.url, url)
        endpoint.write({"name": "1C:Enterprise (main)", "url": url, "timeout": 20})
        # their own endpoint: a new secret, no headers
        self.env["crm.deal.handoff.endpoint"].with_user(self.user_sales_manager).create(
            {"name": "Production", "url": "https://production.example.com/hook"}
        )
        self.endpoint.with_user(self.env.ref("base.user_admin")).url = "https://erp.example.com/"
        self.assertEqual(self.endpoint.url, "https://erp.example.com/")


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackHandoffAcknowledgeInput(DealHandoffCommon, HttpCase):
    """Item 8: whatever the receiver sends, a clean error, never a 500."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_api = mail_new_test_user(
            cls.env,
            login="user_handoff_json2_input",
            name="1C Exchange",
            groups="base.group_user,deal_stages.group_deal_integration",
        )
        cls.api_key = (
            cls.env["res.users.apikeys"]
            .with_user(cls.user_api)
            ._generate(scope="rpc", name="1C", expiration_date=datetime.now() + timedelta(days=1))
        )

    def _post(self, body):
        return self.url_open(
            "/json/2/crm.deal.handoff/acknowledge",
            data=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "X-Odoo-Database": self.env.cr.dbname,
                "Authorization": f"Bearer {self.api_key}",
            },
        )

    def test_bad_input_answers_a_clean_error(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        key = handoff.idempotency_key
        bodies = [
            {},
            {"idempotency_key": None},
            {"idempotency_key": 12345},
            {"idempotency_key": ["a"] * 50000},
            {"idempotency_key": {"$ne": ""}},
            {"idempotency_key": "x" * 100000},
            {"idempotency_key": "abc\x00def"},
            {"idempotency_key": key, "external_ref": {"a": 1}},
            {"idempotency_key": key, "external_ref": [1, 2]},
            {"idempotency_key": key, "external_ref": True},
            {"idempotency_key": key, "external_ref": "INV\x00-1"},
            {"idempotency_key": key, "ids": [handoff.id]},
            {"idempotency_key": key, "unexpected": 1},
        ]
        for body in bodies:
            with self.subTest(body=str(body)[:80]), mute_logger("odoo.http"):
                response = self._post(body)
                self.assertIn(response.status_code, (400, 403, 404, 422), response.text[:300])
                error = response.json()
                self.assertIn("message", error)
        handoff.invalidate_recordset()
        self.assertEqual(handoff.state, "pending")
        self.assertFalse(handoff.external_ref)

    def test_buttons_answer_missing_and_foreign_records(self):
        deal = self._deal_at_step_2()
        Handoff = self.env["crm.deal.handoff"].with_user(self.user_sales_salesman)
        for method in ("action_retry", "action_cancel"):
            with self.subTest(method=method), self.assertRaises(MissingError):
                getattr(Handoff.browse(987654321), method)()
        other = mail_new_test_user(
            self.env, login="user_handoff_foreign", groups="sales_team.group_sale_salesman"
        )
        handoff = deal.deal_handoff_ids.with_user(other)
        for method in ("action_retry", "action_cancel", "action_resend"):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(handoff, method)()
        self.assertEqual(deal.deal_handoff_ids.state, "pending")


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_security")
class TestAttackBreachNoteReaders(DealSlaCommon):
    """Item 6: the breach note names (and lets read) only the supervisors who
    may read the deal, not those of other teams."""

    def test_breach_note_names_only_supervisors_who_read_the_deal(self):
        foreign_supervisor = mail_new_test_user(
            self.env,
            login="user_other_team_supervisor",
            name="Olga Other Team",
            email="olga.other@test.example.com",
            groups="sales_team.group_sale_salesman,deal_stages.group_deal_supervisor",
        )
        self.env["crm.team"].create({"name": "Other team", "user_id": foreign_supervisor.id})
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertFalse(deal.with_user(foreign_supervisor)._filtered_access("read"))
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(3)
        self.assertEqual(deal.deal_sla_state, "breached")
        note = deal.message_ids.filtered(lambda m: "Deal stalled" in m.body and m.partner_ids)
        self.assertEqual(len(note), 1)
        self.assertIn(self.user_sales_manager.partner_id, note.partner_ids)
        self.assertNotIn(foreign_supervisor.partner_id, note.partner_ids)
        # the note the salesperson reads names nobody of another team
        salesperson_view = note.with_user(self.user_sales_salesman).read(["partner_ids"])[0]
        self.assertNotIn(foreign_supervisor.partner_id.id, salesperson_view["partner_ids"])
        # and the other team's supervisor cannot read it through the message
        self.assertFalse(
            self.env["mail.message"].with_user(foreign_supervisor).search([("id", "=", note.id)])
        )
        self.assertFalse(
            self.env["mail.message"]
            .with_user(foreign_supervisor)
            .search([("partner_ids", "in", foreign_supervisor.partner_id.ids)])
            .filtered(lambda m: "Deals stalled" in (m.subject or ""))
        )
