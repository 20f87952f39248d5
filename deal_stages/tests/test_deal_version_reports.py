from odoo.tests import tagged

from .common import DealVersionCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealVersionReports(DealVersionCommon):
    def test_time_in_step_by_process_version_and_step_key(self):
        old_deal = self._create_deals()
        self._tick(old_deal, self.check_signed)
        old_deal.stage_id = self.stage_team1_2
        draft = self._new_version()
        draft.with_user(self.user_sales_manager).action_publish()
        new_deal = self._create_deals()
        self._tick(new_deal, self._step(draft, "new").check_ids[:1])
        new_deal.deal_check_ids.filtered("required").write({"done": True})
        new_deal.stage_id = self.stage_team1_2
        Report = self.env["crm.deal.step.stay.report"]
        domain = [("lead_id", "in", (old_deal | new_deal).ids)]
        by_version = dict(
            Report._read_group(domain + [("step_key", "=", "new")], ["version"], ["__count"])
        )
        self.assertEqual(by_version, {1: 1, 2: 1}, "the step compared across versions")
        by_process = Report._read_group(domain, ["process_id"], ["__count"])
        self.assertEqual(by_process, [(self.script, 4)], "every version in one process")

    def test_time_in_step_per_deal_by_process_version_and_step_key(self):
        old_deal = self._create_deals()
        self._tick(old_deal, self.check_signed)
        old_deal.stage_id = self.stage_team1_2
        draft = self._new_version()
        draft.with_user(self.user_sales_manager).action_publish()
        new_deal = self._create_deals()
        self._tick(new_deal, self._step(draft, "new").check_ids[:1])
        new_deal.deal_check_ids.filtered("required").write({"done": True})
        new_deal.stage_id = self.stage_team1_2
        # the per-deal totals are written when the transaction commits
        self.env["crm.deal.step.total"]._flush_pending()
        Report = self.env["crm.deal.step.time.report"].with_user(self.user_sales_manager)
        domain = [("lead_id", "in", (old_deal | new_deal).ids)]
        by_version = dict(
            Report._read_group(domain + [("step_key", "=", "new")], ["version"], ["__count"])
        )
        self.assertEqual(by_version, {1: 1, 2: 1}, "the step compared across versions")
        by_process = Report._read_group(domain, ["process_id"], ["__count"])
        self.assertEqual(by_process, [(self.script, 4)], "every version in one process")

    def _deals_over_two_versions(self):
        """v1: one deal moved on to step 2, one lost at step 1; v2 (kept):
        the same again. Returns (v2, the two deals in step 2, the lost ones)."""
        on_v1 = self._create_deals(2)
        self._tick(on_v1[0], self.check_signed)
        on_v1[0].stage_id = self.stage_team1_2
        on_v1[1].action_set_lost()
        v2 = self._new_version()
        v2.with_user(self.user_sales_manager).action_publish()
        on_v2 = self._create_deals(2)
        on_v2[0].deal_check_ids.filtered("required").write({"done": True})
        on_v2[0].stage_id = self.stage_team1_2
        on_v2[1].action_set_lost()
        return v2, on_v1[0] | on_v2[0], on_v1[1] | on_v2[1]

    def _sums(self, model, domain, groupby, measures):
        rows = self.env[model]._read_group(domain, groupby, measures)
        return {
            tuple(
                value.id if hasattr(value, "id") else value for value in row[: len(groupby)]
            ): row[len(groupby) :]
            for row in rows
        }

    def _funnel(self, deals, groupby, domain=()):
        """{group: (reached, moved on, lost, in step now)} of the funnel of ``deals``."""
        return self._sums(
            "crm.deal.step.funnel.report",
            [("lead_id", "in", deals.ids), *domain],
            groupby,
            ["reached_count:sum", "moved_on_count:sum", "lost_count:sum", "current_count:sum"],
        )

    def test_funnel_loss_activities_by_process_version_and_step_key(self):
        v2, in_step_2, lost = self._deals_over_two_versions()
        deals = in_step_2 | lost
        domain = [("lead_id", "in", deals.ids)]
        self.assertEqual(
            self._funnel(deals, ["process_id", "step_key"]),
            {
                (self.script.id, "new"): (4, 2, 2, 0),
                (self.script.id, "proposition"): (2, 0, 0, 2),
            },
            "the process counts the deals of both versions together",
        )
        self.assertEqual(
            self._funnel(deals, ["version"], [("step_key", "=", "new")]),
            {(1,): (2, 1, 1, 0), (2,): (2, 1, 1, 0)},
            "each version its own deals: version 2 compared with version 1",
        )
        losses = self._sums(
            "crm.deal.loss.report", domain, ["process_id", "version", "step_key"], ["__count"]
        )
        self.assertEqual(
            losses, {(self.script.id, 1, "new"): (1,), (self.script.id, 2, "new"): (1,)}
        )
        # the open activities of step 2, asked for by the version each deal follows
        activities = self._sums(
            "crm.deal.activity.report", domain, ["process_id", "version", "step_key"], ["__count"]
        )
        self.assertEqual(
            set(activities),
            {(self.script.id, 1, "proposition"), (self.script.id, 2, "proposition")},
        )
        self.assertEqual(
            self.env["crm.deal.activity.report"].search(domain + [("version", "=", 2)]).lead_id,
            in_step_2.filtered(lambda deal: deal.deal_script_id == v2),
        )
        # order changes sending each deal back to the first step of its version
        self.env["crm.deal.order.change"].create(
            [
                {
                    "lead_id": deal.id,
                    "change_type": "increase",
                    "amount_delta": 100,
                    "return_step_id": self._step(deal.deal_script_id, "new").id,
                    "description": "One more pallet",
                }
                for deal in in_step_2
            ]
        )
        rework = self._sums(
            "crm.deal.rework.report",
            domain,
            ["process_id", "version", "step_key"],
            ["change_count:sum", "amount_delta:sum"],
        )
        self.assertEqual(
            rework,
            {(self.script.id, 1, "new"): (1, 100.0), (self.script.id, 2, "new"): (1, 100.0)},
        )

    def test_funnel_counts_a_migrated_deal_once_in_the_version_it_went_on_in(self):
        v2, in_step_2, lost = self._deals_over_two_versions()
        v3 = self._new_version(v2)
        v3.with_user(self.user_sales_manager).action_publish(in_flight="migrate")
        self.assertEqual(in_step_2.deal_script_id, v3)
        deals = in_step_2 | lost
        domain = [("lead_id", "in", deals.ids)]
        self.assertEqual(
            self._funnel(deals, ["process_id", "step_key"]),
            {
                (self.script.id, "new"): (4, 2, 2, 0),
                (self.script.id, "proposition"): (2, 0, 0, 2),
            },
            "a migrated deal reached step 2 once, and stands in it now",
        )
        self.assertEqual(
            self._funnel(deals, ["version"], [("step_key", "=", "proposition")]),
            {(3,): (2, 0, 0, 2)},
        )
        # their open activities are version 3's now
        activities = self._sums(
            "crm.deal.activity.report", domain, ["version", "step_key"], ["__count"]
        )
        self.assertEqual(set(activities), {(3, "proposition")})

    def test_funnel_old_step_left_when_migrated_to_another_key(self):
        # version 2 renames the last step: the deal in it is migrated to "payment"
        deals = self._deals_in_three_steps()
        v2 = self._new_version()
        self._step(v2, "prepayment").step_key = "payment"
        v2.with_user(self.user_sales_manager).action_publish(
            in_flight="migrate", step_map={"prepayment": "payment"}
        )
        self.assertEqual(deals[2].deal_step_id, self._step(v2, "payment"))
        # (reached, moved on, lost, in step now)
        self.assertEqual(
            self._funnel(deals, ["version", "step_key"]),
            {
                (1, "new"): (2, 2, 0, 0),
                (1, "proposition"): (1, 1, 0, 0),
                (1, "prepayment"): (1, 1, 0, 0),
                (2, "new"): (1, 0, 0, 1),
                (2, "proposition"): (1, 0, 0, 1),
                (2, "payment"): (1, 0, 0, 1),
            },
            "the deal left prepayment for payment: moved on, not in the old step",
        )

    def test_funnel_migrated_to_an_earlier_key_is_not_moved_on(self):
        # version 2 drops the last step: its deal goes back to "proposition",
        # then a deal of "new" is sent on past it to "prepayment" of version 3
        deals = self._deals_in_three_steps()
        v2 = self._new_version()
        v2.return_step_other_id = False
        self._step(v2, "prepayment").unlink()
        v2.with_user(self.user_sales_manager).action_publish(
            in_flight="migrate", step_map={"prepayment": "proposition"}
        )
        self.assertEqual(deals[2].deal_step_id, self._step(v2, "proposition"))
        self.assertEqual(
            self._funnel(deals, ["version", "step_key"]),
            {
                (1, "new"): (2, 2, 0, 0),
                (1, "prepayment"): (1, 0, 0, 0),
                (2, "new"): (1, 0, 0, 1),
                (2, "proposition"): (2, 0, 0, 2),
            },
            "sent back from prepayment to proposition: left, not moved on",
        )
        # version 3 has prepayment again, after a new step "checking"
        v3 = self._new_version(v2)
        self._step(v3, "proposition").step_key = "checking"
        v3.with_user(self.user_sales_manager).action_publish(
            in_flight="migrate", step_map={"proposition": "checking"}
        )
        self.assertEqual(
            self._funnel(deals, ["step_key"]),
            {
                ("new",): (3, 2, 0, 1),
                ("proposition",): (2, 2, 0, 0),
                ("checking",): (2, 0, 0, 2),
                ("prepayment",): (1, 0, 0, 0),
            },
        )
