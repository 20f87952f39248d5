from datetime import datetime, timedelta

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import DealStagesCommon

T0 = datetime(2026, 1, 5, 9, 0)  # a Monday
NOW = T0 + timedelta(hours=72)


def at(hours):
    return freeze_time(T0 + timedelta(hours=hours))


@tagged("post_install", "-at_install", "deal_stages")
class TestDealControlReports(DealStagesCommon):
    """A known history, read back as the web client reads the analyses.

    Script steps S1, S2, S3 (``step_1..3``); times in hours from T0:

    ====  ===========  ====  =================================================
    deal  salesperson  team  history
    ====  ===========  ====  =================================================
    A     salesman     1     S1 0-10, S2 10-30, S1 30-36, S2 36-60, S3 60-now
    B     salesman     1     S1 0-4, S2 4-8, lost at 8 in S2 (reason, 1000)
    C     leads        2     S1 0-2, S2 2-50 (override, deadline breached),
                             S3 50-now
    ====  ===========  ====  =================================================

    Team 1 is led by ``user_sales_manager``, team 2 by ``user_team_leader``,
    who is only in the supervisor group. "Now" is T0 + 72 h.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_team_b()
        cls.lost_reason = cls.env["crm.lost.reason"].create({"name": "Too expensive"})
        s1, s2, s3 = (cls.step_1.stage_id, cls.step_2.stage_id, cls.step_3.stage_id)
        Lead = cls.env["crm.lead"]
        with at(0):
            cls.deal_a, cls.deal_b = Lead.create(
                [
                    {
                        "name": name,
                        "type": "opportunity",
                        "team_id": cls.sales_team_1.id,
                        "user_id": cls.user_sales_salesman.id,
                        "expected_revenue": revenue,
                    }
                    for name, revenue in (("Deal A", 5000), ("Deal B", 1000))
                ]
            )
            cls.deal_c = Lead.create(
                {
                    "name": "Deal C",
                    "type": "opportunity",
                    "team_id": cls.sales_team_2.id,
                    "user_id": cls.user_sales_leads.id,
                    "expected_revenue": 2000,
                }
            )
        with at(2):
            cls.deal_c._deal_move_context("override", note="Customer paid upfront").write(
                {"stage_id": s2.id}
            )
        with at(4):
            cls.deal_b.stage_id = s2
        with at(8):
            cls.deal_b.action_set_lost(lost_reason_id=cls.lost_reason.id)
        with at(10):
            cls.deal_a.stage_id = s2
        with at(30):
            cls.deal_a.stage_id = s1
        with at(36):
            cls.deal_a.stage_id = s2
        with at(50):
            cls.deal_c.stage_id = s3
        with at(60):
            cls.deal_a.stage_id = s3
        # the deadline (SLA) feature flags breached stays; set it as it would
        cls.env["crm.deal.stage.log"].search(
            [("lead_id", "=", cls.deal_c.id), ("step_id", "=", cls.step_2.id)]
        ).sla_breached = True
        cls.env.flush_all()

    def _groups(self, model, groupby, aggregates, domain=(), user=None):
        """``formatted_read_group`` as the pivot/graph call it, keyed by group."""
        Model = self.env[model].with_user(user or self.env.user)
        with freeze_time(NOW):
            groups = Model.formatted_read_group(list(domain), groupby, aggregates)
        return {
            tuple(
                group[spec][0] if isinstance(group[spec], tuple) else group[spec]
                for spec in groupby
            ): {agg: group[agg] for agg in aggregates}
            for group in groups
        }

    def assertGroups(self, actual, expected):
        self.assertEqual(set(actual), set(expected), "groups")
        for key, values in expected.items():
            for agg, value in values.items():
                self.assertAlmostEqual(actual[key][agg], value, places=4, msg=f"{key} {agg}")

    # ------------------------------------------------------------
    # TIME IN STEP
    # ------------------------------------------------------------

    def test_time_in_step_per_stay(self):
        aggregates = ["__count", "hours:avg", "median_hours:avg", "p90_hours:avg", "days:avg"]
        groups = self._groups(
            "crm.deal.step.stay.report", ["step_id"], aggregates, user=self.user_sales_manager
        )
        self.assertGroups(
            groups,
            {
                # stays 10, 6 (A), 4 (B), 2 (C)
                (self.step_1.id,): {
                    "__count": 4,
                    "hours:avg": 5.5,
                    "median_hours:avg": 5.0,
                    "p90_hours:avg": 8.8,
                    "days:avg": 5.5 / 24,
                },
                # stays 20, 24 (A), 4 (B, ended by the loss), 48 (C)
                (self.step_2.id,): {
                    "__count": 4,
                    "hours:avg": 24.0,
                    "median_hours:avg": 22.0,
                    "p90_hours:avg": 40.8,
                },
                # current stays: 12 (A), 22 (C), counted up to now
                (self.step_3.id,): {
                    "__count": 2,
                    "hours:avg": 17.0,
                    "median_hours:avg": 17.0,
                    "p90_hours:avg": 21.0,
                },
            },
        )
        # the grand total of the pivot: the median of all ten stays
        total = self._groups(
            "crm.deal.step.stay.report", [], ["median_hours:avg"], user=self.user_sales_manager
        )
        self.assertAlmostEqual(total[()]["median_hours:avg"], 11.0)
        # completed stays only
        completed = self._groups(
            "crm.deal.step.stay.report",
            ["step_id"],
            ["__count", "hours:avg"],
            domain=[("is_open", "=", False)],
            user=self.user_sales_manager,
        )
        self.assertNotIn((self.step_3.id,), completed)
        self.assertEqual(completed[(self.step_2.id,)]["__count"], 4)

    def test_time_in_step_pivot_grouping_sets(self):
        """The pivot asks for all its groupings in one call: cells and totals exact."""
        Report = self.env["crm.deal.step.stay.report"].with_user(self.user_sales_manager)
        with freeze_time(NOW):
            by_step, by_step_person, total = Report.formatted_read_grouping_sets(
                [],
                [["step_id"], ["step_id", "salesperson_id"], []],
                ["__count", "median_hours:avg", "p90_hours:avg"],
            )
        step_2 = next(g for g in by_step if g["step_id"][0] == self.step_2.id)
        self.assertAlmostEqual(step_2["median_hours:avg"], 22.0)
        cell = next(
            g
            for g in by_step_person
            if g["step_id"][0] == self.step_2.id
            and g["salesperson_id"][0] == self.user_sales_salesman.id
        )
        # 20, 24 (A) and 4 (B)
        self.assertEqual(cell["__count"], 3)
        self.assertAlmostEqual(cell["median_hours:avg"], 20.0)
        self.assertAlmostEqual(cell["p90_hours:avg"], 23.2)
        self.assertAlmostEqual(total[0]["median_hours:avg"], 11.0)

    def test_time_in_step_cumulative(self):
        aggregates = [
            "__count",
            "hours:avg",
            "median_hours:avg",
            "p90_hours:avg",
            "stay_count:sum",
            "reentry_count:sum",
        ]
        groups = self._groups(
            "crm.deal.step.time.report", ["step_id"], aggregates, user=self.user_sales_manager
        )
        self.assertGroups(
            groups,
            {
                # per deal: A 16 (10 + 6), B 4, C 2
                (self.step_1.id,): {
                    "__count": 3,
                    "hours:avg": 22 / 3,
                    "median_hours:avg": 4.0,
                    "p90_hours:avg": 13.6,
                    "stay_count:sum": 4,
                    "reentry_count:sum": 1,
                },
                # per deal: A 44 (20 + 24), B 4, C 48
                (self.step_2.id,): {
                    "__count": 3,
                    "hours:avg": 32.0,
                    "median_hours:avg": 44.0,
                    "p90_hours:avg": 47.2,
                    "stay_count:sum": 4,
                    "reentry_count:sum": 1,
                },
                (self.step_3.id,): {
                    "__count": 2,
                    "hours:avg": 17.0,
                    "median_hours:avg": 17.0,
                    "stay_count:sum": 2,
                    "reentry_count:sum": 0,
                },
            },
        )

    def test_time_in_step_as_salesperson(self):
        """A salesperson's analysis holds their own deals only (A and B)."""
        groups = self._groups(
            "crm.deal.step.stay.report",
            ["step_id"],
            ["__count", "median_hours:avg", "p90_hours:avg"],
            user=self.user_sales_salesman,
        )
        self.assertGroups(
            groups,
            {
                (self.step_1.id,): {"__count": 3, "median_hours:avg": 6.0, "p90_hours:avg": 9.2},
                (self.step_2.id,): {"__count": 3, "median_hours:avg": 20.0},
                (self.step_3.id,): {"__count": 1, "median_hours:avg": 12.0},
            },
        )
        cumulative = self._groups(
            "crm.deal.step.time.report",
            ["step_id"],
            ["__count", "median_hours:avg"],
            user=self.user_sales_salesman,
        )
        self.assertEqual(cumulative[(self.step_1.id,)]["__count"], 2)
        self.assertAlmostEqual(cumulative[(self.step_1.id,)]["median_hours:avg"], 10.0)
        rows = self.env["crm.deal.step.stay.report"].with_user(self.user_sales_salesman).search([])
        self.assertEqual(rows.lead_id, self.deal_a | self.deal_b)

    def _history_totals(self, deals):
        """{(deal, step): (stays, seconds of the stays left, open stay's entry)}
        computed from the stage history rows themselves."""
        expected = {}
        logs = self.env["crm.deal.stage.log"].search(
            [("lead_id", "in", deals.ids), ("step_id", "!=", False), ("cause", "!=", "lost")]
        )
        for log in logs:
            key = (log.lead_id.id, log.step_id.id)
            count, seconds, open_since = expected.get(key, (0, 0.0, False))
            if log.date_out:
                seconds += max((log.date_out - log.date_in).total_seconds(), 0)
            else:
                open_since = log.date_in
            expected[key] = (count + 1, seconds, open_since)
        return expected

    def _stored_totals(self, deals):
        totals = self.env["crm.deal.step.total"].search([("lead_id", "in", deals.ids)])
        return {
            (total.lead_id.id, total.step_id.id): (
                total.stay_count,
                total.closed_seconds,
                total.open_date_in,
            )
            for total in totals
        }

    def test_time_in_step_totals_follow_history(self):
        """The per-deal totals behind the analyses stay exact as deals bounce."""
        deals = self.deal_a | self.deal_b | self.deal_c
        self.assertEqual(self._stored_totals(deals), self._history_totals(deals))
        # deal A goes back to S1 a second time, then on to S2 again
        with at(72):
            self.deal_a.stage_id = self.step_1.stage_id
        with at(80):
            self.deal_a.stage_id = self.step_2.stage_id
        # read in the same transaction, before any commit: already counted
        Report = self.env["crm.deal.step.time.report"].with_user(self.user_sales_manager)
        with freeze_time(T0 + timedelta(hours=90)):
            rows = Report.search_read(
                [("lead_id", "=", self.deal_a.id)],
                ["step_id", "hours", "stay_count", "reentry_count", "is_open"],
            )
        by_step = {row["step_id"][0]: row for row in rows}
        # S1: 10 + 6 + 8; S2: 20 + 24 + 10 running; S3: 12
        self.assertAlmostEqual(by_step[self.step_1.id]["hours"], 24.0)
        self.assertEqual(by_step[self.step_1.id]["reentry_count"], 2)
        self.assertAlmostEqual(by_step[self.step_2.id]["hours"], 54.0)
        self.assertEqual(by_step[self.step_2.id]["stay_count"], 3)
        self.assertTrue(by_step[self.step_2.id]["is_open"])
        self.assertAlmostEqual(by_step[self.step_3.id]["hours"], 12.0)
        self.assertFalse(by_step[self.step_3.id]["is_open"])
        # what a commit stores, other transactions read
        self.env.cr.precommit.run()
        self.assertEqual(self._stored_totals(deals), self._history_totals(deals))
        # a stay removed from the history (by an administrator): recounted
        self.env["crm.deal.stage.log"].search(
            [("lead_id", "=", self.deal_a.id), ("step_id", "=", self.step_3.id)]
        ).unlink()
        self.env.cr.precommit.run()
        stored = self._stored_totals(deals)
        self.assertNotIn((self.deal_a.id, self.step_3.id), stored)
        self.assertEqual(stored, self._history_totals(deals))
        # rebuilt from scratch, the same totals
        self.env["crm.deal.step.total"]._rebuild()
        self.assertEqual(self._stored_totals(deals), stored)

    def test_time_in_step_totals_batched(self):
        """The totals of moved deals are recomputed in one statement, however many."""
        for count in (2, 12):
            with at(100):
                deals = self._create_deals(count, team_id=self.sales_team_1.id)
            with at(110):
                deals.stage_id = self.step_2.stage_id
            self.env.flush_all()
            with self.assertQueryCount(1):
                self.env["crm.deal.step.total"]._flush_pending()
            # S1 left after 10 h, S2 entered at 110 h
            expected = {}
            for deal in deals:
                expected[deal.id, self.step_1.id] = (1, 36000.0, False)
                expected[deal.id, self.step_2.id] = (1, 0.0, T0 + timedelta(hours=110))
            self.assertEqual(self._stored_totals(deals), expected)

    # ------------------------------------------------------------
    # FUNNEL, LOSSES, REWORK
    # ------------------------------------------------------------

    def test_step_funnel(self):
        aggregates = [
            "reached_count:sum",
            "moved_on_count:sum",
            "lost_count:sum",
            "current_count:sum",
            "conversion_rate:avg",
            "loss_rate:avg",
        ]
        groups = self._groups(
            "crm.deal.step.funnel.report", ["step_id"], aggregates, user=self.user_sales_manager
        )
        self.assertGroups(
            groups,
            {
                (self.step_1.id,): {
                    "reached_count:sum": 3,
                    "moved_on_count:sum": 3,
                    "lost_count:sum": 0,
                    "current_count:sum": 0,
                    "conversion_rate:avg": 100.0,
                },
                (self.step_2.id,): {
                    "reached_count:sum": 3,
                    "moved_on_count:sum": 2,
                    "lost_count:sum": 1,
                    "current_count:sum": 0,
                    "conversion_rate:avg": 200 / 3,
                    "loss_rate:avg": 100 / 3,
                },
                (self.step_3.id,): {
                    "reached_count:sum": 2,
                    "moved_on_count:sum": 0,
                    "lost_count:sum": 0,
                    "current_count:sum": 2,
                    "conversion_rate:avg": 0.0,
                },
            },
        )
        per_person = self._groups(
            "crm.deal.step.funnel.report",
            ["step_id", "salesperson_id"],
            ["reached_count:sum", "lost_count:sum"],
            user=self.user_sales_manager,
        )
        self.assertEqual(
            per_person[(self.step_2.id, self.user_sales_salesman.id)],
            {"reached_count:sum": 2, "lost_count:sum": 1},
        )
        per_month = self._groups(
            "crm.deal.step.funnel.report",
            ["date_reached:month"],
            ["reached_count:sum"],
            user=self.user_sales_manager,
        )
        self.assertEqual(list(per_month.values()), [{"reached_count:sum": 8}])
        own = self._groups(
            "crm.deal.step.funnel.report",
            ["step_id"],
            ["reached_count:sum"],
            user=self.user_sales_salesman,
        )
        self.assertEqual(own[(self.step_3.id,)]["reached_count:sum"], 1)

    def test_losses(self):
        groups = self._groups(
            "crm.deal.loss.report",
            ["step_id", "lost_reason_id", "salesperson_id"],
            ["lost_count:sum", "expected_revenue:sum"],
            user=self.user_sales_manager,
        )
        self.assertEqual(
            groups,
            {
                (self.step_2.id, self.lost_reason.id, self.user_sales_salesman.id): {
                    "lost_count:sum": 1,
                    "expected_revenue:sum": 1000.0,
                }
            },
        )
        self.assertEqual(
            self.env["crm.deal.loss.report"].with_user(self.user_sales_salesman).search([]).lead_id,
            self.deal_b,
        )
        self.assertFalse(
            self.env["crm.deal.loss.report"].with_user(self.user_team_leader).search([])
        )

    def test_rework(self):
        with at(70):
            self.env["crm.deal.order.change"].create(
                {
                    "lead_id": self.deal_a.id,
                    "change_type": "increase",
                    "amount_delta": 700,
                    "return_step_id": self.step_2.id,
                    "description": "Two more pallets",
                }
            )
        groups = self._groups(
            "crm.deal.rework.report",
            ["change_type", "return_step_id"],
            ["change_count:sum", "amount_delta:sum"],
            user=self.user_sales_manager,
        )
        self.assertEqual(
            groups[("increase", self.step_2.id)],
            {"change_count:sum": 1, "amount_delta:sum": 700.0},
        )

    # ------------------------------------------------------------
    # DISCIPLINE
    # ------------------------------------------------------------

    def _set_activities(self):
        """Replace the script's activities by known ones (due relative to NOW)."""
        self._script_activities(self.deal_a | self.deal_b | self.deal_c).unlink()
        model_id = self.env["ir.model"]._get_id("crm.lead")
        today = NOW.date()
        self.env["mail.activity"].create(
            [
                {
                    "res_model_id": model_id,
                    "res_id": lead.id,
                    "activity_type_id": self.activity_type_todo.id,
                    "summary": summary,
                    "user_id": user.id,
                    "date_deadline": today + timedelta(days=days),
                    "deal_step_id": self.step_3.id,
                }
                for lead, summary, user, days in (
                    (self.deal_a, "Late one", self.user_sales_salesman, -2),
                    (self.deal_a, "Upcoming", self.user_sales_salesman, 3),
                    (self.deal_c, "Check the prepayment", self.user_sales_leads, -1),
                )
            ]
        )

    def test_discipline_activities(self):
        self._set_activities()
        groups = self._groups(
            "crm.deal.activity.report",
            ["user_id", "step_id"],
            ["open_count:sum", "overdue_count:sum"],
            user=self.user_sales_manager,
        )
        self.assertEqual(
            groups,
            {
                (self.user_sales_salesman.id, self.step_3.id): {
                    "open_count:sum": 2,
                    "overdue_count:sum": 1,
                },
                (self.user_sales_leads.id, self.step_3.id): {
                    "open_count:sum": 1,
                    "overdue_count:sum": 1,
                },
            },
        )
        own = self._groups(
            "crm.deal.activity.report",
            ["user_id"],
            ["open_count:sum"],
            user=self.user_sales_salesman,
        )
        self.assertEqual(own, {(self.user_sales_salesman.id,): {"open_count:sum": 2}})

    def test_discipline_breaches_and_overrides(self):
        groups = self._groups(
            "crm.deal.step.stay.report",
            ["step_id", "salesperson_id"],
            ["breach_count:sum"],
            domain=[("sla_breached", "=", True)],
            user=self.user_sales_manager,
        )
        self.assertEqual(
            groups,
            {(self.step_2.id, self.user_sales_leads.id): {"breach_count:sum": 1}},
        )
        overrides = (
            self.env["crm.deal.stage.log"]
            .with_user(self.user_sales_manager)
            .search([("cause", "=", "override")])
        )
        self.assertEqual(overrides.lead_id, self.deal_c)
        self.assertEqual(overrides.note, "Customer paid upfront")
        self.assertEqual(overrides.user_id, self.env.user)

    # ------------------------------------------------------------
    # ACCESS
    # ------------------------------------------------------------

    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_team_leader_access(self):
        """A team leader in the supervisor group sees the deals of their team."""
        deals = self.deal_a | self.deal_b | self.deal_c
        Lead = self.env["crm.lead"].with_user(self.user_team_leader)
        self.assertEqual(
            Lead.with_context(active_test=False).search([("id", "in", deals.ids)]),
            self.deal_c,
        )
        with self.assertRaises(AccessError):
            self.deal_a.with_user(self.user_team_leader).read(["name"])
        logs = self.env["crm.deal.stage.log"].with_user(self.user_team_leader).search([])
        self.assertEqual(logs.lead_id, self.deal_c)
        for model in (
            "crm.deal.step.stay.report",
            "crm.deal.step.time.report",
            "crm.deal.step.funnel.report",
        ):
            rows = self.env[model].with_user(self.user_team_leader).search([])
            self.assertEqual(rows.lead_id, self.deal_c, model)
        groups = self._groups(
            "crm.deal.step.stay.report",
            ["step_id"],
            ["__count", "hours:avg"],
            user=self.user_team_leader,
        )
        self.assertEqual(groups[(self.step_2.id,)], {"__count": 1, "hours:avg": 48.0})
        # the salesperson: own deals and their history only
        logs = self.env["crm.deal.stage.log"].with_user(self.user_sales_salesman).search([])
        self.assertEqual(logs.lead_id, self.deal_a | self.deal_b)
        with self.assertRaises(AccessError):
            self.deal_c.with_user(self.user_sales_salesman).read(["name"])
        # a sales manager sees everything
        rows = self.env["crm.deal.step.stay.report"].with_user(self.user_sales_manager).search([])
        self.assertEqual(rows.lead_id, deals)

    @mute_logger("odoo.addons.base.models.ir_rule")
    def test_multi_company(self):
        company_2 = self.env["res.company"].create({"name": "Other Company"})
        (self.user_sales_manager | self.user_sales_leads).write(
            {"company_ids": [Command.link(company_2.id)]}
        )
        # a script shared by both companies may follow the deal there
        self.deal_c.deal_script_id.company_id = False
        self.deal_c.company_id = company_2
        self.env["crm.deal.stage.log"].search(
            [("lead_id", "=", self.deal_c.id)]
        ).company_id = company_2
        manager = self.user_sales_manager
        Report = self.env["crm.deal.step.stay.report"].with_user(manager)
        main_only = Report.with_context(allowed_company_ids=[self.company_main.id]).search([])
        self.assertEqual(main_only.lead_id, self.deal_a | self.deal_b)
        both = Report.with_context(allowed_company_ids=[self.company_main.id, company_2.id]).search(
            []
        )
        self.assertEqual(both.lead_id, self.deal_a | self.deal_b | self.deal_c)
        funnel = (
            self.env["crm.deal.step.funnel.report"]
            .with_user(manager)
            .with_context(allowed_company_ids=[self.company_main.id])
        )
        self.assertNotIn(self.deal_c, funnel.search([]).lead_id)
