from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged, users, warmup

from .common import DealExceptionCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealLost(DealExceptionCommon):
    @users("user_sales_salesman")
    def test_lost_clean_up_depends_on_the_step(self):
        at_invoicing = self._deals_at(self.step_2)
        at_prepayment = self._deals_at(self.step_3)
        (at_invoicing | at_prepayment).action_set_lost(lost_reason_id=self.reason.id)
        self.assertEqual(self._summaries(at_invoicing), ["Cancel the invoice"])
        self.assertEqual(self._summaries(at_prepayment), ["Refund the prepayment"])
        refund = self._script_activities(at_prepayment)
        self.assertEqual(refund.user_id, self.user_sales_leads)
        self.assertEqual(refund.deal_step_id, self.step_3)
        for deal, step in ((at_invoicing, self.step_2), (at_prepayment, self.step_3)):
            self.assertEqual(deal.won_status, "lost")
            stay = self._open_stay(deal)
            self.assertEqual(stay.cause, "lost")
            self.assertEqual(stay.step_id, step)
            self.assertEqual(stay.stage_id, step.stage_id)
            self.assertEqual(stay.note, "Too expensive")
            self.assertTrue(stay.entry_done)
            note = deal.message_ids.filtered(
                lambda m, s=step: f"Lost at the step {s.name}" in m.body
            )
            self.assertEqual(len(note), 1)
            self.assertIn("Too expensive", note.body)

    @users("user_sales_salesman")
    def test_lost_cancels_script_activities_keeps_manual_ones(self):
        deal = self._deals_at(self.step_2)
        self.assertEqual(self._summaries(deal), ["Issue the invoice"])
        manual = deal.activity_schedule(
            "mail.mail_activity_data_call", summary="Call the customer back"
        )
        deal.action_set_lost(lost_reason_id=self.reason.id)
        self.assertTrue(manual.exists(), "manual activities stay")
        self.assertEqual(self._summaries(deal), ["Cancel the invoice"])
        self.assertEqual(
            deal.sudo().deal_log_ids.sorted("id").mapped("cause"), ["move", "move", "lost"]
        )
        self.assertTrue(deal.sudo().deal_log_ids.sorted("id")[1].date_out, "the stay is closed")

    @users("user_sales_salesman")
    def test_lost_through_wizard_rpc_and_write_behave_the_same(self):
        by_wizard, by_rpc, by_write = self._deals_at(self.step_3, count=3)
        wizard = Form(
            self.env["crm.lead.lost"].with_context(
                active_model="crm.lead", default_lead_ids=by_wizard.ids
            )
        )
        self.assertTrue(wizard.deal_lost_reason_required)
        wizard.lost_reason_id = self.reason
        wizard.save().action_lost_reason_apply()
        by_rpc.action_set_lost(lost_reason_id=self.reason.id)
        # Odoo's lost semantic: archived at 0 % (e.g. an import)
        by_write.write({"active": False, "probability": 0, "lost_reason_id": self.reason.id})
        for deal in (by_wizard, by_rpc, by_write):
            self.assertEqual(deal.won_status, "lost")
            self.assertEqual(self._summaries(deal), ["Refund the prepayment"])
            stay = self._open_stay(deal)
            self.assertEqual(
                (stay.cause, stay.step_id, stay.note), ("lost", self.step_3, "Too expensive")
            )
            self.assertEqual(
                len(deal.message_ids.filtered(lambda m: "Lost at the step Prepayment" in m.body)), 1
            )

    @users("user_sales_salesman")
    def test_lost_reason_required_by_the_step(self):
        at_prepayment = self._deals_at(self.step_3)
        with self._assert_raises(UserError, "lost reason is required.*Prepayment"):
            at_prepayment.action_set_lost()
        with self._assert_raises(UserError, "lost reason is required"):
            at_prepayment.write({"active": False, "probability": 0})
        with self._assert_raises(UserError, "lost reason is required"):
            self.env["crm.lead.lost"].create(
                {"lead_ids": at_prepayment.ids}
            ).action_lost_reason_apply()
        self.assertEqual(at_prepayment.won_status, "pending")
        self.assertTrue(at_prepayment.active)
        self.assertEqual(self._open_stay(at_prepayment).cause, "move")
        # not required at Invoicing
        at_invoicing = self._deals_at(self.step_2)
        at_invoicing.action_set_lost()
        self.assertEqual(self._open_stay(at_invoicing).cause, "lost")
        self.assertFalse(self._open_stay(at_invoicing).note)

    @users("user_sales_salesman")
    def test_lost_twice_does_nothing_more(self):
        deal = self._deals_at(self.step_2)
        deal.action_set_lost(lost_reason_id=self.reason.id)
        deal.action_set_lost(lost_reason_id=self.reason.id)
        self.assertEqual(len(self._script_activities(deal)), 1)
        self.assertEqual(deal.sudo().deal_log_ids.mapped("cause").count("lost"), 1)

    @users("user_sales_salesman")
    def test_plain_archive_is_not_a_refusal(self):
        deal = self._deals_at(self.step_2)
        deal.action_archive()
        self.assertEqual(self._summaries(deal), ["Issue the invoice"])
        self.assertEqual(self._open_stay(deal).cause, "move")

    def test_refusal_message_auto_and_propose(self):
        template = self.env.ref("deal_stages.mail_template_deal_order_cancelled")
        self.step_3.write({"lost_mail_template_id": template.id, "mail_mode": "auto"})
        self.step_4.write({"lost_mail_template_id": template.id, "mail_mode": "propose"})
        auto = self._deals_at(self.step_3, partner_id=self.customer.id)
        propose = self._deals_at(self.step_4, partner_id=self.customer.id)
        with self.mock_mail_gateway():
            (auto | propose).with_user(self.user_sales_salesman).action_set_lost(
                lost_reason_id=self.reason.id
            )
        self.assertEqual(len(self._new_mails), 1, "propose sends nothing")
        self.assertIn(self.customer, self._new_mails.recipient_ids)
        self.assertIn("is cancelled", self._new_mails.subject)
        self.assertEqual(self._new_mails.model, "crm.lead")
        self.assertEqual(self._new_mails.res_id, auto.id)
        proposal = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "=", propose.id),
                ("deal_mail_template_id", "=", template.id),
            ]
        )
        self.assertEqual(len(proposal), 1)
        self.assertEqual(proposal.user_id, self.user_sales_salesman)
        # restored: the customer must not be told the order is cancelled
        propose.action_restore()
        self.assertFalse(proposal.exists())
        self.assertIn("Refund the prepayment", self._summaries(propose), "the clean-up stays")


@tagged("post_install", "-at_install", "deal_stages")
class TestDealRestore(DealExceptionCommon):
    @users("user_sales_salesman")
    def test_restore_returns_to_the_lost_at_step_without_duplicates(self):
        deal = self._deals_at(self.step_1)
        self.assertEqual(self._summaries(deal), ["Get the signed copy", "Send the contract"])
        deal.action_set_lost(lost_reason_id=self.reason.id)
        self.assertFalse(self._script_activities(deal))
        deal.action_restore()
        self.assertTrue(deal.active)
        self.assertEqual(deal.won_status, "pending")
        self.assertEqual(deal.deal_step_id, self.step_1)
        stay = self._open_stay(deal)
        self.assertEqual((stay.cause, stay.step_id), ("restore", self.step_1))
        self.assertFalse(self._script_activities(deal), "'once' activities are not created again")
        self.assertEqual(
            deal.sudo().deal_log_ids.sorted("id").mapped("cause"), ["move", "lost", "restore"]
        )

    @users("user_sales_salesman")
    def test_restore_always_activities_once_and_keeps_clean_up(self):
        deal = self._deals_at(self.step_2)
        deal.action_set_lost(lost_reason_id=self.reason.id)
        deal.action_restore()
        self.assertEqual(self._summaries(deal), ["Cancel the invoice", "Issue the invoice"])
        note = deal.message_ids.filtered(lambda m: "Activities of the refusal still open" in m.body)
        self.assertEqual(len(note), 1)
        self.assertIn("Cancel the invoice", note.body)
        # lost and restored again: no duplicate of anything
        deal.action_set_lost(lost_reason_id=self.reason.id)
        deal.action_unarchive()
        self.assertEqual(self._summaries(deal), ["Cancel the invoice", "Issue the invoice"])
        self.assertEqual(self._open_stay(deal).cause, "restore")

    def test_restore_moves_back_a_deal_moved_while_lost(self):
        deal = self._deals_at(self.step_3)
        deal.action_set_lost(lost_reason_id=self.reason.id)
        deal.stage_id = self.stage_team1_1
        deal.action_restore()
        self.assertEqual(deal.deal_step_id, self.step_3)
        self.assertEqual(self._open_stay(deal).cause, "restore")

    def test_restore_sends_no_customer_message_again(self):
        template = self.env.ref("deal_stages.mail_template_deal_production")
        self.step_2.write({"mail_template_id": template.id, "mail_mode": "auto"})
        with self.mock_mail_gateway():
            deal = self._deals_at(self.step_2, partner_id=self.customer.id)
        self.assertEqual(len(self._new_mails), 1)
        deal.action_set_lost(lost_reason_id=self.reason.id)
        with self.mock_mail_gateway():
            deal.action_restore()
        self.assertFalse(self._new_mails)


@tagged("post_install", "-at_install", "deal_stages")
class TestDealOrderChange(DealExceptionCommon):
    def _change_by_wizard(self, deal, change_type="increase", amount=0.0, step=None, text="More"):
        wizard = Form(
            self.env["crm.deal.order.change.wizard"].with_context(default_lead_id=deal.id)
        )
        wizard.change_type = change_type
        wizard.amount_delta = amount
        wizard.description = text
        if step:
            wizard.return_step_id = step
        return wizard

    @users("user_sales_salesman")
    def test_increase_from_shipment_returns_to_invoicing(self):
        deal = self._deals_at(self.step_4, expected_revenue=1000)
        self.assertEqual(self._summaries(deal), ["Ship the order"])
        action = deal.action_deal_order_change()
        self.assertEqual(action["res_model"], "crm.deal.order.change.wizard")
        wizard = self._change_by_wizard(deal, amount=500)
        self.assertEqual(wizard.return_step_id, self.step_2, "the script's default for increases")
        wizard.save().action_confirm()
        change = deal.deal_change_ids
        self.assertEqual(change.name, "Change 1")
        self.assertEqual(change.user_id, self.user_sales_salesman)
        self.assertEqual((change.from_step_id, change.return_step_id), (self.step_4, self.step_2))
        self.assertEqual(deal.expected_revenue, 1500)
        self.assertEqual(change.expected_revenue, 1500)
        self.assertEqual(deal.deal_step_id, self.step_2)
        stay = self._open_stay(deal)
        self.assertEqual(
            (stay.cause, stay.change_id, stay.from_step_id), ("change", change, self.step_4)
        )
        self.assertIn("Change 1", stay.note)
        # the step's change activities plus its entry ones ("always")
        self.assertEqual(
            self._summaries(deal), ["Issue the invoice", "Re-issue the invoice for the difference"]
        )
        # posted on the deal, the team leader notified
        post = deal.message_ids.filtered(
            lambda m: "Change 1" in (m.body or "") and "Back to" in m.body
        )
        self.assertEqual(len(post), 1)
        self.assertIn(self.user_sales_manager.partner_id, post.partner_ids)
        self.assertIn("1,500.00", post.body)

        # a second change from Invoicing: numbered 2, the re-invoice activity not duplicated
        self._change_by_wizard(
            deal, "correction", -200, text="Price corrected"
        ).save().action_confirm()
        self.assertEqual(deal.deal_change_ids.mapped("name"), ["Change 2", "Change 1"])
        self.assertEqual(deal.deal_change_count, 2)
        self.assertEqual(deal.expected_revenue, 1300)
        self.assertEqual(deal.deal_step_id, self.step_2, "the step starts again")
        self.assertEqual(self._open_stay(deal).change_id, deal.deal_change_ids[0])
        self.assertEqual(
            self._summaries(deal), ["Issue the invoice", "Re-issue the invoice for the difference"]
        )

    @users("user_sales_salesman")
    def test_change_over_rpc(self):
        deal = self._deals_at(self.step_3, expected_revenue=100)
        change = self.env["crm.deal.order.change"].create(
            {"lead_id": deal.id, "change_type": "decrease", "amount_delta": -40}
        )
        self.assertEqual(change.return_step_id, self.step_3, "no default for decreases: stays")
        self.assertEqual(deal.expected_revenue, 60)
        self.assertEqual(self._open_stay(deal).cause, "change")
        # forged values of the record are ignored: it is the change as it happened
        other = self.env["crm.deal.order.change"].create(
            {
                "lead_id": deal.id,
                "change_type": "increase",
                "user_id": self.user_sales_leads.id,
                "name": "Change 9",
                "return_step_id": self.step_1.id,
            }
        )
        self.assertEqual((other.name, other.user_id), ("Change 2", self.user_sales_salesman))
        self.assertEqual(deal.deal_step_id, self.step_1)
        # several at once: each applies to the deal as the previous one left it
        third, fourth = self.env["crm.deal.order.change"].create(
            [
                {"lead_id": deal.id, "change_type": "correction", "amount_delta": 5},
                {"lead_id": deal.id, "change_type": "other", "amount_delta": 5},
            ]
        )
        self.assertEqual((third.name, fourth.name), ("Change 3", "Change 4"))
        self.assertEqual((third.expected_revenue, fourth.expected_revenue), (65, 70))
        self.assertEqual(deal.expected_revenue, 70)
        self.assertEqual(fourth.from_step_id, self.step_1)

    @users("user_sales_salesman")
    def test_return_step_only_current_or_earlier(self):
        deal = self._deals_at(self.step_2)
        wizard = self._change_by_wizard(deal)
        self.assertEqual(wizard.return_step_id, self.step_2, "default increase step")
        self.assertEqual(wizard.allowed_return_step_ids[:], self.step_1 | self.step_2)
        deal_at_1 = self._deals_at(self.step_1)
        self.assertEqual(
            self._change_by_wizard(deal_at_1).return_step_id,
            self.step_1,
            "the default is after the current step: the current one",
        )
        with self._assert_raises(UserError, "current step or an earlier one"):
            self.env["crm.deal.order.change"].create(
                {"lead_id": deal.id, "change_type": "other", "return_step_id": self.step_4.id}
            )
        self.assertFalse(deal.deal_change_ids)
        self.assertEqual(deal.deal_step_id, self.step_2)

    @users("user_sales_salesman")
    def test_change_refused_on_lost_and_won_deals(self):
        lost, won = self._deals_at(self.step_2, count=2)
        lost.action_set_lost(lost_reason_id=self.reason.id)
        with self._assert_raises(UserError, "is lost: restore it"):
            self.env["crm.deal.order.change"].create({"lead_id": lost.id, "amount_delta": 10})
        with self._assert_raises(UserError, "is lost"):
            lost.action_deal_order_change()
        # won straight from step 2: this test is about changes, not gates
        won._deal_move_context("move", skip_gate=True).action_set_won()
        with self._assert_raises(UserError, "is won"):
            self.env["crm.deal.order.change"].create({"lead_id": won.id, "amount_delta": 10})
        self.assertFalse(
            self.env["crm.deal.order.change"].search([("lead_id", "in", (lost | won).ids)])
        )

    def test_change_record_rules(self):
        own = self._deals_at(self.step_2)
        colleague = self._deals_at(self.step_2, user_id=self.user_sales_leads.id)
        Change = self.env["crm.deal.order.change"].with_user(self.user_sales_salesman)
        change = Change.create({"lead_id": own.id, "amount_delta": 10})
        with self.assertRaises(AccessError):
            Change.create({"lead_id": colleague.id, "amount_delta": 10})
        colleague_change = (
            self.env["crm.deal.order.change"]
            .with_user(self.user_sales_leads)
            .create({"lead_id": colleague.id, "amount_delta": 20})
        )
        self.assertEqual(Change.search([]), change, "a salesperson sees their own deals' changes")
        # supervisors see and record the changes of the deals of the teams they lead
        supervisor = self.env["res.users"].create(
            {
                "name": "Sup",
                "login": "sup_exceptions",
                "group_ids": [Command.set([self.env.ref("deal_stages.group_deal_supervisor").id])],
            }
        )
        Supervised = self.env["crm.deal.order.change"].with_user(supervisor)
        self.assertFalse(Supervised.search([("lead_id", "in", (own | colleague).ids)]))
        self.sales_team_1.user_id = supervisor
        self.assertEqual(
            Supervised.search([("lead_id", "in", (own | colleague).ids)]),
            change | colleague_change,
        )
        self.assertEqual(len(colleague.with_user(supervisor).deal_change_ids), 1)
        Supervised.create({"lead_id": colleague.id, "amount_delta": 1})
        self.assertEqual(len(colleague.deal_change_ids), 2)
        # applied: never edited afterwards
        with self._assert_raises(UserError, "cannot be edited"):
            change.with_user(self.user_sales_salesman).amount_delta = 999
        with self._assert_raises(UserError, "cannot be edited"):
            self.env["crm.deal.order.change"].browse(change.id).return_step_id = self.step_1
        with self.assertRaises(AccessError):
            change.with_user(self.user_sales_salesman).unlink()

    def test_b2b_template_exceptions(self):
        team = self.env["crm.team"].create({"name": "B2B exceptions"})
        script = self.env["crm.deal.script"].browse(
            self.env["crm.deal.script"].action_create_from_template(team.id)
        )
        steps = script.step_ids.sorted("sequence")
        invoicing = steps.filtered(lambda s: s.name == "Invoicing")
        self.assertEqual(script.return_step_increase_id, invoicing, "mapped to the copy's steps")
        self.assertEqual(script.return_step_correction_id, invoicing)

        def lost_summaries(name):
            step = steps.filtered(lambda s: s.name.startswith(name))
            return step.activity_template_ids.filtered(lambda t: t.trigger == "lost").mapped(
                "summary"
            )

        self.assertNotIn("Refund the prepayment", lost_summaries("Invoicing"))
        self.assertIn("Refund the prepayment", lost_summaries("Prepayment"))
        self.assertIn("Refund the prepayment", lost_summaries("Shipment"))
        self.assertNotIn("Cancel the production order", lost_summaries("Prepayment"))
        self.assertIn("Cancel the production order", lost_summaries("Order to accounting"))
        self.assertIn(
            "Re-issue the invoice for the difference",
            invoicing.activity_template_ids.filtered(lambda t: t.trigger == "change").mapped(
                "summary"
            ),
        )
        self.assertTrue(steps.filtered(lambda s: s.name == "Prepayment").lost_reason_required)

        # an increase at Shipment of the shipped script: back to Invoicing, re-invoice
        deal = self.env["crm.lead"].create(
            {
                "name": "B2B deal",
                "type": "opportunity",
                "team_id": team.id,
                "user_id": self.user_sales_salesman.id,
            }
        )
        shipment = steps.filtered(lambda s: s.name == "Shipment")
        deal._deal_move_context("move", skip_gate=True).write({"stage_id": shipment.stage_id.id})
        self.env["crm.deal.order.change"].with_user(self.user_sales_salesman).create(
            {"lead_id": deal.id, "change_type": "increase", "amount_delta": 100}
        )
        self.assertEqual(deal.deal_step_id, invoicing)
        self.assertIn("Re-issue the invoice for the difference", self._summaries(deal))


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_perf")
class TestDealExceptionsPerformance(DealExceptionCommon):
    def _queries_to_lose(self, deals):
        return self._count_queries(lambda: deals.action_set_lost(lost_reason_id=self.reason.id))[0]

    @users("user_sales_salesman")
    @warmup
    def test_batch_lost_queries_do_not_grow(self):
        deals = self._create_deals(220)
        # straight to Shipment (the trusted move skips gates): setup, not measured
        deals._deal_move_context("move", skip_gate=True).write({"stage_id": self.stage_shipment.id})
        small, large = deals[:20], deals[20:]
        small_count = self._queries_to_lose(small)
        large_count = self._queries_to_lose(large)
        self.assertEqual(len(self._script_activities(large)), 400, "two clean-up activities each")
        self.assertTrue(all(d.won_status == "lost" for d in large))
        # measured: 52 queries for 20 deals, 61 for 200 (the ORM writes rows in
        # chunks of 100): the clean-up itself adds no per-deal query
        self.assertLessEqual(large_count, small_count + 15)
