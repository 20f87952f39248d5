import json
import time
from datetime import datetime, timedelta

import requests

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.deal_stages.tools import DealGateError
from odoo.addons.deal_stages.tools import handoff as handoff_tools
from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealHandoffCommon


@tagged("post_install", "-at_install")
class TestDealHandoff(DealHandoffCommon):
    def test_entering_the_step_writes_the_handoff_in_the_move(self):
        deal = self._create_deals()
        self.assertFalse(deal.deal_handoff_ids)
        deal.stage_id = self.stage_team1_2
        handoff = deal.deal_handoff_ids
        self.assertEqual(len(handoff), 1)
        self.assertRecordValues(
            handoff,
            [
                {
                    "state": "pending",
                    "kind": "order",
                    "step_id": self.step_2.id,
                    "endpoint_id": self.endpoint.id,
                    "attempts": 0,
                }
            ],
        )
        payload = json.loads(handoff.payload)
        self.assertEqual(payload["schema"], handoff_tools.SCHEMA_VERSION)
        self.assertEqual(payload["idempotency_key"], handoff.idempotency_key)
        self.assertEqual(payload["deal"]["id"], deal.id)
        self.assertIn("customer", payload)
        self.assertEqual(deal.deal_handoff_state, "pending")
        # the cron is woken for after the commit
        cron = self.env.ref("deal_stages.ir_cron_deal_handoff")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]))

    def test_payload_reads_what_the_orm_reads(self):
        """The move reads the deal's hand-offs, order changes and customer
        addresses in one statement: the payload is what the ORM reads give
        (the active addresses of each type, in the contacts' order)."""
        company = self.env["res.partner"].create({"name": "Planet Express", "is_company": True})
        self.env["res.partner"].create(
            [
                {"name": "Zeta", "type": "delivery", "parent_id": company.id, "city": "Z"},
                {"name": "Alpha", "type": "delivery", "parent_id": company.id, "city": "A"},
                {"name": "Old", "type": "invoice", "parent_id": company.id, "active": False},
                {"name": "Bills", "type": "invoice", "parent_id": company.id, "city": "B"},
            ]
        )
        contact = self.env["res.partner"].create({"name": "Hermes", "parent_id": company.id})
        deal = self._create_deals(partner_id=contact.id, expected_revenue=100)
        self.env["crm.deal.order.change"].create(
            [
                {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -10},
                {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -20},
            ]
        )
        self.env.invalidate_all()
        deal.stage_id = self.stage_team1_2
        payload = json.loads(deal.deal_handoff_ids.payload)
        addresses = payload["customer"]["addresses"]
        self.assertEqual((addresses["invoice"]["city"], addresses["delivery"]["city"]), ("B", "A"))
        self.assertEqual([c["amount_delta"] for c in payload["changes"]], [-10, -20])
        self.env.invalidate_all()
        deal = deal.sudo()
        self.assertEqual(payload["customer"], deal._deal_handoff_customer_data())
        self.assertEqual(
            payload["changes"],
            [
                deal._deal_handoff_change_data(change)
                for change in deal.deal_change_ids.sorted(lambda c: (c.date, c.id))
            ],
        )
        self.assertEqual(deal.deal_handoff_state, "pending")

    def test_delivery_acknowledged_in_the_answer(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self._deliver()
        self.assertRecordValues(
            handoff,
            [{"state": "acknowledged", "attempts": 1, "last_status": 200, "external_ref": "DOC-1"}],
        )
        self.assertEqual(deal.deal_handoff_state, "acknowledged")
        stored = self.receiver.state.stored[handoff.idempotency_key]
        self.assertEqual(stored["payload"], json.loads(handoff.payload))
        self.assertEqual(stored["headers"]["webhook-id"], handoff.idempotency_key)
        self.assertTrue(stored["headers"]["webhook-signature"].startswith("v1,"))
        self.assertIn("DOC-1", deal.message_ids[0].body)
        # nothing is sent twice
        self._deliver()
        self.assertEqual(len(self.receiver.state.log), 1)

    def test_500_twice_then_success_with_the_same_key(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(500, 500)
        before = fields.Datetime.now()
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "pending", "attempts": 1, "last_status": 500}])
        # first wait: about a minute, with jitter
        wait = (handoff.next_attempt - before).total_seconds()
        self.assertTrue(40 <= wait <= 80, wait)
        self._deliver()  # not due yet: nothing sent
        self.assertEqual(len(self.receiver.state.log), 1)
        self._make_due(handoff)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "pending", "attempts": 2, "last_status": 500}])
        self._make_due(handoff)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "acknowledged", "attempts": 3}])
        keys = {key for key, __ in self.receiver.state.log}
        self.assertEqual(keys, {handoff.idempotency_key})
        self.assertEqual(len(self.receiver.state.stored), 1)

    def test_timeout_is_retried(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.endpoint.timeout = 1
        self.receiver.state.delay = 1.5
        self._deliver()
        self.assertEqual(handoff.state, "pending")
        self.assertIn("Timeout", handoff.last_error)
        self.assertFalse(handoff.last_status)
        # the receiver stores it after the sender gave up: the retry gets the
        # same document
        for __ in range(50):
            if self.receiver.state.log:
                break
            time.sleep(0.1)
        self.receiver.state.delay = 0
        self._make_due(handoff)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "acknowledged", "external_ref": "DOC-1"}])
        self.assertEqual(len(self.receiver.state.stored), 1)
        self.assertEqual(self.receiver.state.duplicates, 1)

    def test_401_fails_with_one_activity(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(401)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "failed", "last_status": 401}])
        self.assertEqual(deal.deal_handoff_state, "failed")
        activity = handoff.activity_id
        self.assertEqual(activity.user_id, self.user_integration_owner)
        self.assertEqual((activity.res_model, activity.res_id), ("crm.lead", deal.id))
        self.assertTrue(deal.deal_at_risk)
        self.assertIn(deal, self.env["crm.lead"].search([("deal_at_risk", "=", True)]))
        # failed: no more attempts by itself, no second activity
        self._make_due(handoff)
        self._deliver()
        self.assertEqual(len(self.receiver.state.log), 1)
        # retry now: the same key, the activity is closed once acknowledged
        key = handoff.idempotency_key
        handoff.with_user(self.user_sales_salesman).action_retry()
        self.assertEqual(handoff.state, "pending")
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "acknowledged", "idempotency_key": key}])
        self.assertFalse(activity.exists().filtered("active"))

    def test_409_counts_as_delivered(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(409)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "acknowledged", "last_status": 409}])

    def test_given_up_after_the_last_attempt(self):
        self.endpoint.max_attempts = 2
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(503, 503)
        self._deliver()
        self.assertEqual(handoff.state, "pending")
        self._make_due(handoff)
        self._deliver()
        self.assertRecordValues(handoff, [{"state": "dead", "attempts": 2}])
        self.assertTrue(handoff.activity_id)

    def test_bad_signature_refused_by_the_receiver(self):
        # signed with another secret: the receiver refuses it, stores nothing
        self.endpoint.secret = handoff_tools.new_secret()
        deal = self._deal_at_step_2()
        self._deliver()
        self.assertRecordValues(deal.deal_handoff_ids, [{"state": "failed", "last_status": 401}])
        self.assertFalse(self.receiver.state.stored)
        # a forged request, straight to the receiver
        response = requests.post(
            self.receiver.url,
            data=b'{"x":1}',
            headers={
                "webhook-id": "forged",
                "webhook-timestamp": str(int(datetime.now().timestamp())),
                "webhook-signature": "v1,AAAA",
            },
            timeout=5,
        )
        self.assertEqual(response.status_code, 401)
        self.assertFalse(self.receiver.state.stored)

    def test_rotation_signs_with_both_secrets(self):
        self.endpoint.action_rotate_secret()
        self.assertEqual(self.endpoint.secret_previous, self.secret)
        self.assertNotEqual(self.endpoint.secret, self.secret)
        deal = self._deal_at_step_2()
        self._deliver()
        self.assertEqual(deal.deal_handoff_ids.state, "acknowledged")

    def test_rolled_back_move_sends_nothing(self):
        deal = self._create_deals()
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            deal.stage_id = self.stage_team1_2
            self.assertTrue(deal.deal_handoff_ids)
            # something later in the move's transaction fails
            deal.expected_revenue = 1 / 0
        self.env.invalidate_all()
        self.assertFalse(self.env["crm.deal.handoff"].search([("lead_id", "=", deal.id)]))
        self._deliver()
        self.assertFalse(self.receiver.state.log)

    def test_gate_waits_for_the_acknowledgement(self):
        deal = self._deal_at_step_2()
        with self.assertRaises(DealGateError) as refusal:
            deal.with_user(self.user_sales_salesman).stage_id = self.stage_prepayment
        self.assertIn("acknowledges the hand-off", str(refusal.exception))
        self.assertTrue(deal.deal_gate_blocked)
        self.receiver.state.accept = True  # 202 without a document id
        self._deliver()
        self.assertEqual(deal.deal_handoff_ids.state, "sent")
        with self.assertRaises(DealGateError):
            deal.with_user(self.user_sales_salesman).stage_id = self.stage_prepayment
        integration = mail_new_test_user(
            self.env, login="user_handoff_api", groups="deal_stages.group_deal_integration"
        )
        result = (
            self.env["crm.deal.handoff"]
            .with_user(integration)
            .acknowledge(deal.deal_handoff_ids.idempotency_key, "INV-77")
        )
        self.assertEqual(result["state"], "acknowledged")
        deal.with_user(self.user_sales_salesman).stage_id = self.stage_prepayment
        self.assertEqual(deal.stage_id, self.stage_prepayment)

    def test_supervisor_overrides_the_gate(self):
        deal = self._deal_at_step_2()
        deal.with_user(self.user_supervisor).action_deal_force_stage(
            self.stage_prepayment.id, "1C is down, order passed by phone"
        )
        self.assertEqual(deal.stage_id, self.stage_prepayment)

    def test_acknowledgement_moves_the_deal_on(self):
        self.step_2.write(
            {
                "auto_advance_domain": "[('deal_handoff_state', '=', 'acknowledged')]",
                "auto_advance_label": "Handed off",
            }
        )
        deal = self._deal_at_step_2()
        self.assertEqual(deal.stage_id, self.stage_team1_2)
        self._deliver()
        self.assertEqual(deal.stage_id, self.stage_prepayment)

    def test_order_change_hands_off_a_change(self):
        deal = self._deal_at_step_2()
        self._deliver()
        first = deal.deal_handoff_ids
        self._order_change(deal, self.step_1)
        change = deal.deal_handoff_ids - first
        self.assertRecordValues(change, [{"kind": "change", "parent_id": first.id}])
        payload = json.loads(change.payload)
        self.assertEqual(payload["original"]["idempotency_key"], first.idempotency_key)
        self.assertEqual(payload["original"]["external_ref"], "DOC-1")
        self.assertEqual(payload["change"]["amount_delta"], 500)
        # back at the hand-off step: no second order, the change is waited for
        deal.stage_id = self.stage_team1_2
        self.assertEqual(len(deal.deal_handoff_ids), 2)
        with self.assertRaises(DealGateError):
            deal.stage_id = self.stage_prepayment
        self._deliver()
        self.assertEqual(change.state, "acknowledged")
        deal.stage_id = self.stage_prepayment

    def test_cancel_and_resend(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(422)
        self._deliver()
        with self.assertRaises(AccessError):
            handoff.with_user(self.user_sales_salesman).action_resend()
        handoff.with_user(self.user_supervisor).action_resend()
        new = deal.deal_handoff_ids - handoff
        self.assertEqual(handoff.state, "cancelled")
        self.assertNotEqual(new.idempotency_key, handoff.idempotency_key)
        self.assertEqual(new.parent_id, handoff)
        new.with_user(self.user_sales_salesman).action_cancel()
        self.assertEqual(new.state, "cancelled")
        self.assertFalse(deal.deal_handoff_state)
        self._deliver()
        self.assertEqual(len(self.receiver.state.log), 1)

    def test_one_bad_row_never_blocks_the_others(self):
        deals = self._create_deals(3)
        deals.stage_id = self.stage_team1_2
        handoffs = deals.deal_handoff_ids
        self.assertEqual(len(handoffs), 3)
        # one payload the receiver cannot read: refused, the others go through
        handoffs[0].sudo().payload = "not json"
        with mute_logger("odoo.addons.deal_stages.models.crm_deal_handoff"):
            self._deliver()
        self.assertEqual(handoffs[0].state, "failed")
        self.assertEqual(set(handoffs[1:].mapped("state")), {"acknowledged"})

    def test_a_broken_payload_never_aborts_the_move(self):
        deal = self._create_deals()
        with self._broken_payloads():
            deal.stage_id = self.stage_team1_2
        self.assertEqual(deal.stage_id, self.stage_team1_2)
        self.assertFalse(deal.deal_handoff_ids)
        self.assertIn("no payload today", deal.message_ids[0].body)
        # the gate says what is missing
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_prepayment
        self.assertIn("no hand-off was sent", str(refusal.exception))

    def test_endpoint_checks(self):
        with self.assertRaises(UserError):
            self.endpoint.secret = "not-a-secret"
        with self.assertRaises(UserError):
            self.endpoint.url = "ftp://example.com"
        # readable by every salesperson: no credentials in it
        for url in (
            "https://exchange:s3cret@1c.example.com/hs/crm",
            "https://exchange@1c.example.com/",
        ):
            with self.assertRaises(UserError) as refusal:
                self.endpoint.url = url
            self.assertIn("extra headers", str(refusal.exception))
        with self.assertRaises(UserError):
            self.endpoint.extra_headers = "[1, 2]"
        # waits that no schedule can hold: refused, not a traceback
        for delays in ("inf", "1m, 1e300", "1e10d"):
            with self.assertRaises(UserError):
                self.endpoint.retry_delays = delays
        self.endpoint.extra_headers = '{"Authorization": "Basic dGVzdDp0ZXN0"}'
        deal = self._deal_at_step_2()
        self._deliver()
        stored = self.receiver.state.stored[deal.deal_handoff_ids.idempotency_key]
        self.assertEqual(stored["headers"]["authorization"], "Basic dGVzdDp0ZXN0")


@tagged("post_install", "-at_install")
class TestDealHandoffSecurity(DealHandoffCommon):
    def test_salesperson_cannot_forge_a_handoff(self):
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids.with_user(self.user_sales_salesman)
        # reads the hand-offs of their deals
        self.assertEqual(handoff.read(["state"])[0]["state"], "pending")
        for values in (
            {"state": "acknowledged"},
            {"attempts": 0},
            {"external_ref": "FAKE"},
        ):
            with self.assertRaises(AccessError):
                handoff.write(values)
        with self.assertRaises(AccessError):
            deal.with_user(self.user_sales_salesman).write({"deal_handoff_state": "acknowledged"})
        with self.assertRaises(AccessError):
            deal.with_user(self.user_sales_salesman).write(
                {"deal_handoff_ids": [Command.update(handoff.id, {"state": "acknowledged"})]}
            )
        with self.assertRaises(AccessError):
            handoff.env["crm.deal.handoff"].create(
                {"lead_id": deal.id, "endpoint_id": self.endpoint.id, "idempotency_key": "x"}
            )
        with self.assertRaises(AccessError):
            handoff.env["crm.deal.handoff"].acknowledge(handoff.idempotency_key, "FAKE")
        self.assertEqual(handoff.sudo().state, "pending")

    def test_salesperson_cannot_read_secrets(self):
        endpoint = self.endpoint.with_user(self.user_sales_salesman)
        self.assertEqual(endpoint.name, "1C:Enterprise")
        for field_name in ("secret", "secret_previous", "extra_headers"):
            with self.assertRaises(AccessError):
                endpoint.read([field_name])
        with self.assertRaises(AccessError):
            self.endpoint.with_user(self.user_sales_manager).read(["secret"])
        with self.assertRaises(AccessError):
            endpoint.write({"url": "http://evil.example.com"})

    def test_default_keys_cannot_forge_the_row(self):
        deal = self._create_deals()
        deal.with_user(self.user_sales_salesman).with_context(
            default_state="acknowledged", default_external_ref="FAKE", default_attempts=99
        ).stage_id = self.stage_team1_2
        self.assertRecordValues(
            deal.deal_handoff_ids, [{"state": "pending", "external_ref": False, "attempts": 0}]
        )

    def test_other_salesperson_does_not_see_the_handoff(self):
        deal = self._deal_at_step_2()
        other = mail_new_test_user(
            self.env, login="user_handoff_other", groups="sales_team.group_sale_salesman"
        )
        deal.user_id = self.user_sales_salesman
        self.assertFalse(
            self.env["crm.deal.handoff"].with_user(other).search([("lead_id", "=", deal.id)])
        )


@tagged("post_install", "-at_install")
class TestDealHandoffJson2(DealHandoffCommon, HttpCase):
    """The receiver acknowledges later, over Odoo's JSON-2 API."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_api = mail_new_test_user(
            cls.env,
            login="user_handoff_json2",
            name="1C Exchange",
            groups="base.group_user,deal_stages.group_deal_integration",
        )
        cls.api_key = (
            cls.env["res.users.apikeys"]
            .with_user(cls.user_api)
            ._generate(scope="rpc", name="1C", expiration_date=datetime.now() + timedelta(days=1))
        )

    def _acknowledge(self, key, ref, api_key=None):
        headers = {"Content-Type": "application/json", "X-Odoo-Database": self.env.cr.dbname}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        return self.url_open(
            "/json/2/crm.deal.handoff/acknowledge",
            data=json.dumps({"idempotency_key": key, "external_ref": ref}),
            headers=headers,
        )

    def test_json2_acknowledgement(self):
        self.receiver.state.accept = True
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self._deliver()
        self.assertEqual(handoff.state, "sent")
        # without a key: refused
        response = self._acknowledge(handoff.idempotency_key, "INV-1")
        self.assertEqual(response.status_code, 401)
        handoff.invalidate_recordset()
        self.assertEqual(handoff.state, "sent")
        # unknown key: refused
        with mute_logger("odoo.http"):
            response = self._acknowledge("no-such-key", "INV-1", self.api_key)
        self.assertNotEqual(response.status_code, 200)
        # with the integration user's key: acknowledged, logged on the deal
        response = self._acknowledge(handoff.idempotency_key, "INV-1", self.api_key)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["state"], "acknowledged")
        handoff.invalidate_recordset()
        deal.invalidate_recordset()
        self.assertRecordValues(handoff, [{"state": "acknowledged", "external_ref": "INV-1"}])
        self.assertIn("INV-1", deal.message_ids[0].body)
        self.assertIn("1C Exchange", deal.message_ids[0].body)
        # idempotent
        response = self._acknowledge(handoff.idempotency_key, "INV-1", self.api_key)
        self.assertEqual(response.status_code, 200, response.text)
        # another document for the same hand-off: refused
        with mute_logger("odoo.http"):
            response = self._acknowledge(handoff.idempotency_key, "INV-2", self.api_key)
        self.assertNotEqual(response.status_code, 200)

    def test_json2_refused_for_another_company(self):
        self.receiver.state.accept = True
        other_company = self.env["res.company"].create({"name": "Other Ltd"})
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self._deliver()
        handoff.sudo().company_id = other_company
        with mute_logger("odoo.http"):
            response = self._acknowledge(handoff.idempotency_key, "INV-9", self.api_key)
        self.assertNotEqual(response.status_code, 200)
        handoff.invalidate_recordset()
        self.assertEqual(handoff.state, "sent")
