import json
from unittest.mock import patch

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.deal_stages.tools import DealGateError
from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealHandoffCommon


@tagged("post_install", "-at_install")
class TestDealHandoffFaults(DealHandoffCommon):
    """What goes wrong around a hand-off stays with it: a bad endpoint
    setting, a deal that cannot move on, a payload that cannot be built, a
    lost deal, another company's endpoint."""

    def test_acknowledgement_kept_when_the_deal_cannot_move_on(self):
        """An automation rule refusing the move the acknowledgement triggers:
        the acknowledgement is recorded (in the cron and over JSON-2), the
        deal says why it stayed, the other deals of the batch move on."""
        self.step_2.write(
            {
                "auto_advance_domain": "[('deal_handoff_state', '=', 'acknowledged')]",
                "auto_advance_label": "Handed off",
            }
        )
        deals = self._create_deals(3)
        deals[:2].stage_id = self.stage_team1_2
        lead_model = self.env["ir.model"]._get_id("crm.lead")
        self.env["base.automation"].create(
            {
                "name": "No prepayment for this customer",
                "model_id": lead_model,
                "trigger": "on_stage_set",
                "filter_domain": f"[('id', 'in', {[deals[0].id, deals[2].id]}),"
                f" ('stage_id', '=', {self.stage_prepayment.id})]",
                "action_server_ids": [
                    Command.create(
                        {
                            "name": "Refuse",
                            "model_id": lead_model,
                            "state": "code",
                            "code": "raise UserError('prepayment refused')",
                        }
                    )
                ],
            }
        )
        with mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security"):
            self._deliver()
        self.assertEqual(set(deals[:2].deal_handoff_ids.mapped("state")), {"acknowledged"})
        self.assertEqual(deals[0].stage_id, self.stage_team1_2)
        self.assertEqual(deals[1].stage_id, self.stage_prepayment)
        self.assertIn("prepayment refused", deals[0].message_ids[0].body)
        # acknowledged later, over JSON-2: recorded all the same
        self.receiver.state.accept = True
        deals[2].stage_id = self.stage_team1_2
        self._deliver()
        handoff = deals[2].deal_handoff_ids
        self.assertEqual(handoff.state, "sent")
        integration = mail_new_test_user(
            self.env, login="user_handoff_api_ack", groups="deal_stages.group_deal_integration"
        )
        with mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security"):
            result = (
                self.env["crm.deal.handoff"]
                .with_user(integration)
                .acknowledge(handoff.idempotency_key, "INV-5")
            )
        self.assertEqual(result["state"], "acknowledged")
        self.assertEqual(deals[2].stage_id, self.stage_team1_2)

    def test_no_handoff_to_another_company(self):
        """A script shared by companies: a deal's order never goes to the
        endpoint of another company; the deal says why."""
        other = self.env["res.company"].create({"name": "Other Ltd"})
        self.script.company_id = False
        self.endpoint.write({"user_id": False, "company_id": other.id})
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        self.assertFalse(deal.deal_handoff_ids)
        self.assertIn("another company", deal.message_ids[0].body)
        self._deliver()
        self.assertFalse(self.receiver.state.log)
        with self.assertRaises(DealGateError) as refusal:
            deal.with_user(self.user_sales_salesman).stage_id = self.stage_prepayment
        self.assertIn("no hand-off was sent", str(refusal.exception))

    def test_a_lost_deal_is_not_sent_again(self):
        """A lost deal's order is not sent: neither again with the same key nor
        as a new hand-off (a new document at the receiver)."""
        self.receiver.state.accept = True
        deal = self._create_deals(user_id=self.user_sales_salesman.id)
        deal.stage_id = self.stage_team1_2
        handoff = deal.deal_handoff_ids
        self._deliver()
        self.assertEqual(handoff.state, "sent")
        deal.with_user(self.user_sales_salesman).action_set_lost()
        self.assertEqual(handoff.state, "sent")
        with self.assertRaises(UserError) as refusal:
            handoff.with_user(self.user_sales_salesman).action_retry()
        self.assertIn("lost or archived", str(refusal.exception))
        with self.assertRaises(UserError) as refusal:
            handoff.with_user(self.user_supervisor).action_resend()
        self.assertIn("lost or archived", str(refusal.exception))
        self.assertEqual(self.env["crm.deal.handoff"].search([("lead_id", "=", deal.id)]), handoff)
        self.assertEqual(handoff.state, "sent")
        self._deliver()
        self.assertEqual(len(self.receiver.state.log), 1)
        # restored: it may be sent again
        deal.with_user(self.user_sales_salesman).action_restore()
        handoff.with_user(self.user_sales_salesman).action_retry()
        self.assertEqual(handoff.state, "pending")

    def test_order_change_to_an_archived_endpoint_is_said_on_the_deal(self):
        deal = self._deal_at_step_2()
        self._deliver()
        self.endpoint.active = False
        self._order_change(deal, self.step_2, amount=5)
        self.assertEqual(deal.deal_handoff_ids.mapped("kind"), ["order"])
        change_note = deal.message_ids.filtered(lambda m: "Change 1" in m.body)
        self.assertIn("the endpoint is archived", change_note.body)
        # an endpoint in use: the note says the change was queued
        self.endpoint.active = True
        self._order_change(deal, self.step_2, amount=5)
        change_note = deal.message_ids.filtered(lambda m: "Change 2" in m.body)
        self.assertIn("queued", change_note.body)

    def test_a_bad_extra_header_never_blocks_the_others(self):
        """Headers HTTP cannot carry are refused when written, named but never
        quoted (they hold credentials); stored before that check, they fail
        their own hand-off only, without the value reaching the deal."""
        for text in (
            '{"X-Customer": "Иван"}',
            '{"Authorization": "Basic c2VjcmV0\\n"}',
            '{"Authorization": " Basic c2VjcmV0"}',
            '{"Bad Name": "x"}',
        ):
            with self.assertRaises(UserError) as refusal:
                self.endpoint.extra_headers = text
            self.assertNotIn("c2VjcmV0", str(refusal.exception))
            self.assertNotIn("Иван", str(refusal.exception))
        self.assertIn("“Bad Name”", str(refusal.exception))
        production = self.endpoint.copy({"name": "Production", "secret": self.secret})
        for text in ('{"X-Customer": "Иван"}', '{"Authorization": " Basic c2VjcmV0"}'):
            with self.subTest(headers=text):
                self.receiver.state.log.clear()
                # written before the check existed
                self.env.cr.execute(
                    "UPDATE crm_deal_handoff_endpoint SET extra_headers = %s WHERE id = %s",
                    (text, self.endpoint.id),
                )
                self.env.invalidate_all()
                deals = self._create_deals(2, user_id=self.user_sales_salesman.id)
                deals.stage_id = self.stage_team1_2
                bad, good = deals[0].deal_handoff_ids, deals[1].deal_handoff_ids
                good.sudo().endpoint_id = production
                with mute_logger("odoo.addons.deal_stages.tools.handoff"):
                    self._deliver()
                self.assertRecordValues(
                    bad + good, [{"state": "failed"}, {"state": "acknowledged"}]
                )
                # the bad one was not sent at all, the other once
                self.assertEqual(self.receiver.state.log, [(good.idempotency_key, 200)])
                seen = bad.with_user(self.user_sales_salesman).read(["last_error"])[0]
                self.assertIn("extra headers", seen["last_error"])
                for leak in ("c2VjcmV0", "Иван"):
                    self.assertNotIn(leak, seen["last_error"])
                    self.assertNotIn(leak, deals[0].message_ids[0].body)
                self.assertTrue(bad.activity_id)

    def test_a_broken_payload_never_aborts_an_order_change(self):
        deal = self._deal_at_step_2()
        self._deliver()
        with self._broken_payloads():
            change = self._order_change(deal, self.step_2)
        self.assertEqual(deal.expected_revenue, 500)
        self.assertEqual(deal.deal_handoff_ids.mapped("kind"), ["order"])
        note = deal.message_ids.filtered(lambda m: change.name in m.body)
        self.assertIn("no payload today", note.body)

    def test_a_deal_deleted_during_the_delivery_never_blocks_the_others(self):
        """A deal deleted while its hand-off's request is answered: the
        outcomes of the other rows of the batch are recorded all the same."""
        deals = self._create_deals(2)
        deals.stage_id = self.stage_team1_2
        kept = deals[1].deal_handoff_ids
        Handoff = self.env.registry["crm.deal.handoff"]
        send_all = Handoff._send_all

        def send_then_delete(handoffs, deliveries):
            outcomes = send_all(handoffs, deliveries)
            deals[0].sudo().unlink()
            return outcomes

        with patch.object(Handoff, "_send_all", send_then_delete):
            self._deliver()
        self.assertRecordValues(kept, [{"state": "acknowledged", "attempts": 1}])
        self.assertFalse(deals[0].exists())

    def test_a_change_sent_as_new_still_names_the_order(self):
        """A change the receiver refused, sent again as new by a supervisor:
        its payload still names the order it changes, not the refused change."""
        deal = self._deal_at_step_2()
        self._deliver()
        order = deal.deal_handoff_ids
        self._order_change(deal, self.step_2)
        change = deal.deal_handoff_ids - order
        self.receiver.state.plan(422)
        self._deliver()
        self.assertEqual(change.state, "failed")
        change.with_user(self.user_supervisor).action_resend()
        again = deal.deal_handoff_ids - order - change
        self.assertRecordValues(
            again, [{"kind": "change", "parent_id": order.id, "state": "pending"}]
        )
        payload = json.loads(again.payload)
        self.assertEqual(
            payload["original"],
            {"idempotency_key": order.idempotency_key, "external_ref": "DOC-1"},
        )
        self.assertEqual(payload["change"]["amount_delta"], 500)
        self.assertEqual(change.state, "cancelled")

    def test_acknowledge_with_bad_input(self):
        """``acknowledge`` as JSON-2 sends it: keys and document ids of the
        wrong kind get a clear error and change nothing; a salesperson is
        refused whatever the key."""
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        integration = mail_new_test_user(
            self.env, login="user_handoff_api_bad", groups="deal_stages.group_deal_integration"
        )
        Handoff = self.env["crm.deal.handoff"].with_user(integration)
        for key in (None, 42, ["k"], {"k": 1}, "", "  ", "x" * 300, "a\x00b"):
            with self.subTest(key=key), self.assertRaises(UserError):
                Handoff.acknowledge(key, "INV-1")
        for ref in (True, ["INV"], {"ref": 1}, 1.5):
            with self.subTest(ref=ref), self.assertRaises(UserError):
                Handoff.acknowledge(handoff.idempotency_key, ref)
        with self.assertRaises(AccessError):
            self.env["crm.deal.handoff"].with_user(self.user_sales_salesman).acknowledge(
                handoff.idempotency_key, "INV-1"
            )
        self.assertEqual(handoff.state, "pending")
        self.assertFalse(handoff.external_ref)
