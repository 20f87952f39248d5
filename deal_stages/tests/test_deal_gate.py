from datetime import datetime

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged, users

from odoo.addons.deal_stages.tools import DealGateError

from .common import DealGateCommon, DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGateRequirements(DealGateCommon):
    @users("user_sales_salesman")
    def test_checklist_created_on_entry_once(self):
        deal = self._create_deals()
        self.assertEqual(
            deal.deal_check_ids.mapped("name"), ["Signed contract attached", "Welcome call"]
        )
        self.assertEqual(deal.deal_check_ids.step_id, self.step_1)
        self.assertFalse(any(deal.deal_check_ids.mapped("done")))
        self._tick(deal, self.check_signed)
        deal.stage_id = self.stage_team1_2
        deal.stage_id = self.stage_team1_1
        self.assertEqual(len(deal.deal_check_ids), 2, "re-entry keeps the list")
        self.assertTrue(
            deal.deal_check_ids.filtered(lambda c: c.check_id == self.check_signed).done
        )

    @users("user_sales_salesman")
    def test_checklist_blocks_then_allows(self):
        with freeze_time("2026-11-02 09:00:00"):
            deal = self._create_deals()
        self.assertEqual(
            deal._deal_missing_requirements(self.stage_team1_2),
            ["Tick the checklist item “Signed contract attached”."],
            "optional items never block",
        )
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_team1_2
        self.assertIn("Signed contract attached", str(refusal.exception))
        self.assertIn(deal.name, str(refusal.exception))
        self.assertEqual(deal.stage_id, self.stage_team1_1)
        with freeze_time("2026-11-02 10:30:00"):
            self._tick(deal, self.check_signed)
        signed = deal.deal_check_ids.filtered(lambda c: c.check_id == self.check_signed)
        self.assertEqual(signed.done_by_id, self.user_sales_salesman)
        self.assertEqual(signed.done_date, datetime(2026, 11, 2, 10, 30))
        self.assertEqual(deal._deal_missing_requirements(self.stage_team1_2), [])
        deal.stage_id = self.stage_team1_2
        self.assertEqual(deal.deal_step_id, self.step_2)

    @users("user_sales_salesman")
    def test_untick_is_recorded(self):
        deal = self._create_deals()
        signed = deal.deal_check_ids.filtered(lambda c: c.check_id == self.check_signed)
        signed.done = True
        self.assertIn("ticked", deal.message_ids[0].body)
        signed.done = False
        self.assertFalse(signed.done_by_id)
        self.assertFalse(signed.done_date)
        note = deal.message_ids[0]
        self.assertIn("unticked", note.body)
        self.assertIn("Signed contract attached", note.body)
        self.assertEqual(note.author_id, self.user_sales_salesman.partner_id)
        with self.assertRaises(DealGateError):
            deal.stage_id = self.stage_team1_2

    def test_tick_and_move_in_one_save(self):
        # the form saves the ticked item and the new stage together
        deal = self._create_deals().with_user(self.user_sales_salesman)
        signed = deal.deal_check_ids.filtered(lambda c: c.check_id == self.check_signed)
        deal.write(
            {
                "deal_check_ids": [Command.update(signed.id, {"done": True})],
                "stage_id": self.stage_team1_2.id,
            }
        )
        self.assertEqual(deal.stage_id, self.stage_team1_2)
        self.assertEqual(signed.done_by_id, self.user_sales_salesman)

    @users("user_sales_salesman")
    def test_required_fields_block_then_allow(self):
        deal = self._create_deals_in_step(self.stage_team1_2)
        self.assertEqual(
            deal._deal_missing_requirements(self.stage_prepayment),
            ["Fill in the field “Expected Revenue”.", "Fill in the field “Contact”."],
        )
        deal.expected_revenue = 0.0
        with self.assertRaises(DealGateError) as refusal:
            deal.write({"stage_id": self.stage_prepayment.id, "partner_id": self.contact_1.id})
        self.assertNotIn("Contact", str(refusal.exception), "set in the same write")
        self.assertIn("Expected Revenue", str(refusal.exception), "zero is not set")
        self.assertFalse(deal.partner_id, "nothing applied")
        deal.write(
            {
                "stage_id": self.stage_prepayment.id,
                "partner_id": self.contact_1.id,
                "expected_revenue": 1500.0,
            }
        )
        self.assertEqual(deal.deal_step_id, self.step_3)

    def test_required_many2many_field(self):
        self.step_1.required_field_ids = [
            Command.link(self.env["ir.model.fields"]._get("crm.lead", "tag_ids").id)
        ]
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        self.assertEqual(
            deal._deal_missing_requirements(self.stage_team1_2), ["Fill in the field “Tags”."]
        )
        tag = self.env["crm.tag"].create({"name": "Export"})
        deal.with_user(self.user_sales_salesman).write(
            {"tag_ids": [Command.link(tag.id)], "stage_id": self.stage_team1_2.id}
        )
        self.assertEqual(deal.stage_id, self.stage_team1_2)

    @users("user_sales_salesman")
    def test_activities_block_then_allow_winning(self):
        deal = self._create_deals_in_step(self.stage_prepayment)
        check_prepayment = self._script_activities(deal)
        missing = deal._deal_missing_requirements(self.stage_gen_won)
        self.assertEqual(
            missing,
            ["Mark the activity “Check the prepayment” (Laetitia Sales Leads) as done."],
        )
        with self.assertRaises(DealGateError):
            deal.action_set_won()
        self.assertEqual(deal.won_status, "pending")
        # a manual activity does not block: only the step's own
        deal.activity_schedule(
            activity_type_id=self.activity_type_todo.id,
            summary="Lunch with the customer",
            user_id=self.user_sales_salesman.id,
        )
        check_prepayment.with_user(self.user_sales_leads).action_feedback(feedback="Received")
        self.assertEqual(deal._deal_missing_requirements(self.stage_gen_won), [])
        deal.action_set_won()
        self.assertEqual(deal.won_status, "won")


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGatePolicy(DealGateCommon):
    @users("user_sales_salesman")
    def test_strict_order_refuses_skipping(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_prepayment
        self.assertIn("Steps cannot be skipped", str(refusal.exception))
        self.assertIn(self.step_2.name, str(refusal.exception))
        self.assertEqual(deal.stage_id, self.stage_team1_1)

    def test_free_order_allows_skipping_but_not_the_gate(self):
        self.script.strict_order = False
        deal = self._create_deals().with_user(self.user_sales_salesman)
        self.assertEqual(
            deal._deal_missing_requirements(self.stage_prepayment),
            ["Tick the checklist item “Signed contract attached”."],
        )
        self._tick(deal, self.check_signed)
        deal.stage_id = self.stage_prepayment
        self.assertEqual(deal.deal_step_id, self.step_3)

    def test_back_moves_only_to_return_steps(self):
        self.step_3.back_step_ids = self.step_2
        deal = self._create_deals(stage_id=self.stage_prepayment.id).with_user(
            self.user_sales_salesman
        )
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_team1_1
        self.assertIn("may only go back to", str(refusal.exception))
        deal.stage_id = self.stage_team1_2  # a return step: no gate applies
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.step_2.back_step_ids = False
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_team1_1
        self.assertIn("cannot go back", str(refusal.exception))

    @users("user_sales_salesman")
    def test_won_only_from_last_step_with_its_gate(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        with self.assertRaises(DealGateError) as refusal:
            deal.action_set_won()
        self.assertIn("won only from the last step", str(refusal.exception))
        with self.assertRaises(DealGateError):
            deal.stage_id = self.stage_team1_won  # the kanban way
        self.assertEqual(deal.won_status, "pending")

    @users("user_sales_salesman")
    def test_stage_outside_script(self):
        deal = self._create_deals()
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_gen_1
        self.assertIn("Signed contract attached", str(refusal.exception), "leaving the step")
        self._tick(deal, self.check_signed)
        deal.stage_id = self.stage_gen_1
        self.assertFalse(deal.deal_step_id)
        # back into the script where it left it: no skipping from outside either
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_prepayment
        self.assertIn("the next step is", str(refusal.exception))
        with self.assertRaises(DealGateError):
            deal.action_set_won()
        deal.stage_id = self.stage_team1_2
        self.assertEqual(deal.deal_step_id, self.step_2)

    @users("user_sales_salesman")
    def test_lost_and_restore_are_odoo_buttons(self):
        deal = self._create_deals()
        deal.action_set_lost()
        self.assertFalse(deal.active)
        deal.action_unarchive()
        self.assertTrue(deal.active)
        self.assertEqual(deal.stage_id, self.stage_team1_1)

    def test_deal_without_script_moves_freely(self):
        team = self.env["crm.team"].create({"name": "No process"})
        deal = self.env["crm.lead"].create(
            {"name": "Plain", "type": "opportunity", "team_id": team.id}
        )
        deal.stage_id = self.stage_gen_won
        self.assertEqual(deal.won_status, "won")
        self.assertFalse(deal.deal_check_ids)

    def test_batch_mixing_allowed_and_blocked_changes_nothing(self):
        deals = self._create_deals(3).with_user(self.user_sales_salesman)
        self._tick(deals[0], self.check_signed)
        logs_before = self.env["crm.deal.stage.log"].search_count([("lead_id", "in", deals.ids)])
        with self.assertRaises(DealGateError) as refusal:
            deals.write({"stage_id": self.stage_team1_2.id, "priority": "2"})
        message = str(refusal.exception)
        self.assertNotIn("“Deal 0”", message)
        self.assertIn("“Deal 1”", message)
        self.assertIn("“Deal 2”", message)
        self.assertEqual(deals.stage_id, self.stage_team1_1, "nothing partially applied")
        self.assertEqual(set(deals.mapped("priority")), {"0"})
        self.assertEqual(
            self.env["crm.deal.stage.log"].search_count([("lead_id", "in", deals.ids)]),
            logs_before,
        )
        payload = refusal.exception.context["deal_gate"]
        self.assertEqual([deal["id"] for deal in payload["deals"]], deals[1:].ids)
        self.assertEqual(payload["deals"][0]["issues"][0]["kind"], "check")

    def test_refusal_lists_first_20_deals_then_a_count(self):
        deals = self._create_deals(25)
        with self.assertRaises(DealGateError) as refusal:
            deals.with_user(self.user_sales_salesman).write({"stage_id": self.stage_team1_2.id})
        message = str(refusal.exception)
        self.assertEqual(message.count("Signed contract attached"), 20)
        self.assertIn("and 5 more deals", message)
        self.assertEqual(refusal.exception.context["deal_gate"]["more"], 5)

    def test_import_refused_with_message(self):
        deal = self._create_deals()
        self.env["ir.model.data"].create(
            {
                "name": "gate_import_deal",
                "module": "__import__",
                "model": "crm.lead",
                "res_id": deal.id,
            }
        )
        result = (
            self.env["crm.lead"]
            .with_user(self.user_sales_salesman)
            .load(
                ["id", "stage_id/.id"],
                [["__import__.gate_import_deal", str(self.stage_team1_2.id)]],
            )
        )
        self.assertFalse(result["ids"])
        self.assertIn("Signed contract attached", result["messages"][0]["message"])
        self.assertEqual(deal.stage_id, self.stage_team1_1)

    def test_script_change_in_same_write_judged_on_new_script(self):
        other = self.env["crm.deal.script"].create(
            {"name": "Other", "step_ids": [Command.create({"stage_id": self.stage_gen_1.id})]}
        )
        deal = self._create_deals()
        # the deal leaves its script: its first step has nothing to leave in the new one
        deal.write({"deal_script_id": other.id, "stage_id": self.stage_gen_1.id})
        self.assertEqual(deal.deal_script_id, other)


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGateAccess(DealGateCommon):
    @users("user_sales_salesman")
    def test_salesperson_cannot_create_or_delete_items(self):
        deal = self._create_deals()
        with self.assertRaises(AccessError):
            self.env["crm.deal.check"].create({"lead_id": deal.id, "name": "My own item"})
        with self.assertRaises(AccessError):
            deal.deal_check_ids[0].unlink()
        with self.assertRaises(AccessError):
            deal.deal_check_ids[0].write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            deal.deal_check_ids[0].write({"done_by_id": self.user_sales_leads.id})

    def test_salesperson_ticks_only_deals_they_can_write(self):
        foreign = self._create_deals(user_id=self.user_sales_manager.id)
        item = foreign.deal_check_ids[0]
        with self.assertRaises(AccessError):
            item.with_user(self.user_sales_salesman).write({"done": True})
        with self.assertRaises(AccessError):
            foreign.with_user(self.user_sales_salesman).action_deal_tick_check(self.check_signed.id)
        item.with_user(self.user_sales_leads).write({"done": True})
        self.assertEqual(item.done_by_id, self.user_sales_leads)

    @users("user_sales_salesman")
    def test_tick_by_action_returns_guide(self):
        deal = self._create_deals()
        guide = deal.action_deal_tick_check(self.check_signed.id)
        self.assertTrue(guide["checks"][0]["done"])
        self.assertEqual(guide["missing"], [])
        with self.assertRaises(UserError):
            deal.action_deal_tick_check(-1)

    def test_override_out_of_the_steps_cancels_the_step_activities(self):
        # a shared stage that no step stands for: the deal leaves its step,
        # whose activities go as on any move out of it
        shared = self.env["crm.stage"].create({"name": "Waiting", "sequence": 40})
        deal = self._create_deals()
        step_activities = deal.activity_ids.filtered("deal_script_activity_id")
        self.assertTrue(step_activities)
        deal.with_user(self.user_supervisor).action_deal_force_stage(shared.id, "On hold")
        self.assertEqual(deal.stage_id, shared)
        self.assertFalse(deal.deal_step_id)
        self.assertFalse(step_activities.exists())

    def test_override_by_supervisor_is_logged(self):
        for user in (self.user_supervisor, self.user_sales_manager):
            deal = self._create_deals().with_user(user)
            deal.action_deal_force_stage(self.stage_prepayment.id, "  Paid in cash, signed later  ")
            self.assertEqual(deal.stage_id, self.stage_prepayment)
            last = deal.deal_log_ids.sorted("id")[-1]
            self.assertEqual(last.cause, "override")
            self.assertEqual(last.note, "Paid in cash, signed later")
            self.assertEqual(last.user_id, user)
            note = deal.message_ids.filtered(lambda m: "override" in (m.body or ""))[:1]
            self.assertIn("Signed contract attached", note.body, "what was skipped is recorded")

    def test_override_needs_reason(self):
        deal = self._create_deals().with_user(self.user_supervisor)
        with self.assertRaises(UserError):
            deal.action_deal_force_stage(self.stage_team1_2.id, "   ")
        self.assertEqual(deal.stage_id, self.stage_team1_1)

    def test_override_by_salesperson_refused(self):
        deal = self._create_deals().with_user(self.user_sales_salesman)
        with self.assertRaises(AccessError):
            deal.action_deal_force_stage(self.stage_team1_2.id, "I am in a hurry")
        with self.assertRaises(AccessError):
            Form(self.env["crm.deal.force.stage"].with_user(self.user_sales_salesman))
        self.assertEqual(deal.stage_id, self.stage_team1_1)

    def test_override_wizard(self):
        deals = self._create_deals(2)
        action = deals.with_user(self.user_supervisor).action_deal_open_force_stage()
        wizard_form = Form(
            self.env[action["res_model"]]
            .with_user(self.user_supervisor)
            .with_context(**action["context"])
        )
        wizard_form.stage_id = self.stage_team1_2
        self.assertIn("Signed contract attached", wizard_form.missing_html)
        wizard_form.reason = "Contract signed on paper"
        wizard_form.save().action_confirm()
        self.assertEqual(deals.stage_id, self.stage_team1_2)
        self.assertEqual(
            set(
                deals.deal_log_ids.filtered(lambda log: log.stage_id == self.stage_team1_2).mapped(
                    "cause"
                )
            ),
            {"override"},
        )


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGuide(DealGateCommon):
    @users("user_sales_salesman")
    def test_kanban_card_summary(self):
        deal = self._create_deals()
        self.assertEqual(deal.deal_step_position, "1/3")
        self.assertEqual((deal.deal_check_done, deal.deal_check_total), (0, 2))
        self.assertTrue(deal.deal_gate_blocked)
        self._tick(deal, self.check_signed)
        deal.invalidate_recordset()
        self.assertEqual((deal.deal_check_done, deal.deal_check_total), (1, 2))
        self.assertFalse(deal.deal_gate_blocked)

    @freeze_time("2026-11-02 09:00:00")
    @users("user_sales_salesman")
    def test_process_guide(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        with freeze_time("2026-11-02 15:00:00"):
            deal.stage_id = self.stage_team1_2
        with freeze_time("2026-11-03 15:00:00"):
            deal.invalidate_recordset(["deal_guide"])
            guide = deal.deal_guide
        self.assertEqual(
            [(step["state"], step["hours"]) for step in guide["steps"]],
            [("done", 6.0), ("current", 24.0), ("upcoming", 0.0)],
        )
        self.assertEqual(guide["position"], 2)
        self.assertEqual(guide["next_stage"]["id"], self.stage_prepayment.id)
        self.assertEqual(
            [issue["message"] for issue in guide["missing"]],
            ["Fill in the field “Expected Revenue”.", "Fill in the field “Contact”."],
        )
        preview = guide["next"]
        self.assertEqual(preview["name"], self.step_3.name)
        self.assertEqual(preview["activities"][0]["summary"], "Check the prepayment")
        self.assertEqual(preview["activities"][0]["user"], self.user_sales_leads.name)
        self.assertFalse(guide["can_override"])

    @users("user_sales_salesman")
    def test_process_guide_of_lost_deal(self):
        """A lost deal offers no next move nor ticks; restored, it does again."""
        deal = self._create_deals()
        deal.action_set_lost()
        guide = deal.deal_guide
        self.assertEqual(guide["closed"], "lost")
        self.assertFalse(guide["next_stage"])
        self.assertFalse(guide["next"])
        self.assertEqual(guide["missing"], [])
        self.assertFalse(guide["can_write"])
        deal.action_restore()
        deal.invalidate_recordset(["deal_guide"])
        guide = deal.deal_guide
        self.assertFalse(guide["closed"])
        self.assertEqual(guide["next_stage"]["id"], self.stage_team1_2.id)
        self.assertTrue(guide["missing"])
        self.assertTrue(guide["can_write"])

    def test_new_check_item_reaches_deals_in_step(self):
        deals = self._create_deals(2)
        self.env["crm.deal.script.check"].create(
            {"step_id": self.step_1.id, "name": "Credit check passed"}
        )
        self.assertEqual(len(deals.deal_check_ids), 6)
        self.assertIn(
            "Tick the checklist item “Credit check passed”.",
            deals[0]._deal_missing_requirements(self.stage_team1_2),
        )

    def test_gate_info_for_the_dialog(self):
        deal = self._create_deals().with_user(self.user_sales_salesman)
        info = deal.get_deal_gate_info(self.stage_team1_2.id)
        self.assertEqual(info["deals"][0]["issues"][0]["check_id"], self.check_signed.id)
        deal.action_deal_tick_check(self.check_signed.id)
        self.assertEqual(deal.get_deal_gate_info(self.stage_team1_2.id)["deals"], [])


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGateTemplate(DealStagesCommon):
    def test_b2b_template_gates(self):
        team = self.env["crm.team"].create({"name": "B2B gates"})
        script = self.env["crm.deal.script"].browse(
            self.env["crm.deal.script"].action_create_from_template(team.id)
        )
        contract, invoicing, prepayment, production, shipment, closing, completion = script.step_ids
        self.assertEqual(contract.check_ids.mapped("name"), ["Signed contract attached"])
        self.assertEqual(invoicing.required_field_ids.mapped("name"), ["expected_revenue"])
        self.assertEqual(prepayment.check_ids.mapped("name"), ["Prepayment received"])
        self.assertTrue(production.require_activities_done)
        self.assertEqual(shipment.check_ids.mapped("name"), ["Delivered to the customer"])
        self.assertEqual(
            closing.check_ids.mapped("name"), ["Paid in full", "Closing documents signed"]
        )
        self.assertEqual(prepayment.back_step_ids, invoicing)
        self.assertEqual(completion.back_step_ids, closing)
        deal = self.env["crm.lead"].create(
            {"name": "Pallets", "type": "opportunity", "team_id": team.id}
        )
        self.assertEqual(
            deal._deal_missing_requirements(invoicing.stage_id),
            ["Tick the checklist item “Signed contract attached”."],
        )
        deal.action_deal_tick_check(contract.check_ids.id)
        deal.stage_id = invoicing.stage_id
        self.assertEqual(
            deal._deal_missing_requirements(prepayment.stage_id),
            ["Fill in the field “Expected Revenue”."],
        )


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_perf")
class TestDealGatePerformance(DealGateCommon):
    """A gate check costs the same for 20 deals as for 200."""

    def _gate_queries(self, deals, stage):
        return self._count_queries(lambda: deals._deal_gate_issues(stage), flush=False)

    def _refused_write_queries(self, deals, stage):
        def refused_write():
            with self.assertRaises(DealGateError):
                deals.write({"stage_id": stage.id})

        return self._count_queries(refused_write, flush=False)[0]

    def test_gate_queries_do_not_grow_with_the_batch(self):
        # every kind of requirement at once: checklist, fields, activities
        self.step_1.required_field_ids = self.step_2.required_field_ids
        self.step_1.require_activities_done = True
        warmup = self._create_deals(5).with_user(self.user_sales_salesman)
        small = self._create_deals(20).with_user(self.user_sales_salesman)
        large = self._create_deals(200).with_user(self.user_sales_salesman)
        self._gate_queries(warmup, self.stage_team1_2)
        small_count, _small_issues = self._gate_queries(small, self.stage_team1_2)
        large_count, large_issues = self._gate_queries(large, self.stage_team1_2)
        self.assertEqual(len(large_issues), 200)
        # 3 checklist/field issues + 2 open activities per deal
        self.assertEqual({len(found) for found in large_issues.values()}, {5})
        self.assertEqual(large_count, small_count)
        self.assertLessEqual(large_count, 15)
        self._refused_write_queries(warmup, self.stage_team1_2)
        self.assertEqual(
            self._refused_write_queries(large, self.stage_team1_2),
            self._refused_write_queries(small, self.stage_team1_2),
        )
        # the kanban card's summary (position, checklist, blocked marker)
        counts = []
        for deals in (warmup, small, large):
            self.env.flush_all()
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            deals.read(["deal_step_position", "deal_check_done", "deal_gate_blocked"])
            counts.append(self.env.cr.sql_log_count - before)
        self.assertEqual(counts[1], counts[2])
