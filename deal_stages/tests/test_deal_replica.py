"""Reads a read-only replica can serve (issue 18).

The supervisors' control board, the analyses and the gate dialog's
``get_deal_gate_info`` are reads: Odoo routes their RPC calls to a read-only
cursor (a replica when ``db_replica_host`` is set, a read-only transaction in
the ``--dev replica`` mode and in tests). These tests call them as the web
client does, on such a cursor, and check that they answer and that a write
on the same path is refused by the database (it must go to the primary).
"""

from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from lxml import etree
from psycopg2.errors import ReadOnlySqlTransaction

from odoo import api, fields
from odoo.service.model import call_kw
from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import DealGateCommon

# what the control board's kanban and list read (views/crm_lead_deal_control_views.xml)
BOARD_SPEC = {
    "name": {},
    "deal_step_id": {"fields": {"display_name": {}}},
    "deal_days_in_step": {},
    "deal_step_sla_days": {},
    "deal_sla_live_state": {},
    "deal_overdue_activity_count": {},
    "deal_gate_blocked": {},
    "deal_at_risk": {},
}
BOARD_DOMAIN = [
    ("type", "=", "opportunity"),
    ("deal_script_id", "!=", False),
    ("deal_at_risk", "=", True),
]
REPORTS = ("crm.deal.step.stay.report", "crm.deal.step.time.report")
# every analysis of the menu
ALL_REPORTS = (
    *REPORTS,
    "crm.deal.step.funnel.report",
    "crm.deal.loss.report",
    "crm.deal.rework.report",
    "crm.deal.activity.report",
)
TIME_MEASURES = ["__count", "hours:avg", "median_hours:avg", "p90_hours:avg"]


@tagged("post_install", "-at_install", "deal_stages")
class TestDealReplica(HttpCase, DealGateCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.tz = "UTC"

    def setUp(self):
        super().setUp()
        # deal 0 waits in step 1 (its checklist is not ticked) for 20 days:
        # at risk; deal 1 moved on to step 2
        self.deals = self._create_deals(2)
        self._tick(self.deals[1], self.check_signed)
        self.deals[1].stage_id = self.stage_team1_2
        self.env["crm.deal.stage.log"].search(
            [("lead_id", "=", self.deals[0].id), ("date_out", "=", False)]
        ).date_in = fields.Datetime.now() - timedelta(days=20)
        # what the commit does before another request reads: the per-deal
        # totals of the stays written in this transaction
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.env.flush_all()

    @contextmanager
    def _replica(self, user):
        """An environment of ``user`` on a read-only cursor, as Odoo opens for
        a read-only RPC call (on the replica in production)."""
        cr = self.registry.cursor(readonly=True)
        try:
            self.assertTrue(cr.readonly)
            yield api.Environment(cr, user.id, {"tz": "UTC"})
        finally:
            # a refused write leaves its values to flush: dropped, as the
            # read-only request that made it would be
            cr.rollback()
            cr.close()

    def _rpc(self, env, model, method, *args, **kwargs):
        """The RPC dispatch of ``/web/dataset/call_kw`` and ``/json/2``."""
        return call_kw(env[model], method, list(args), kwargs)

    def _rpc_is_readonly(self, model, method):
        """Whether Odoo routes an RPC call of ``model.method`` to a read-only
        cursor (the rule of web's ``DataSet._call_kw_readonly``)."""
        for cls in type(self.env[model]).mro():
            function = getattr(cls, method, None)
            if function is not None and hasattr(function, "_readonly"):
                return function._readonly
        return False

    def test_reads_are_routed_to_the_replica(self):
        for model, method in [
            ("crm.lead", "get_deal_gate_info"),
            ("crm.lead", "web_search_read"),
            ("crm.lead", "web_read_group"),
            ("crm.lead", "read_progress_bar"),
            *((report, "formatted_read_grouping_sets") for report in REPORTS),
            *((report, "formatted_read_group") for report in REPORTS),
        ]:
            self.assertTrue(self._rpc_is_readonly(model, method), f"{model}.{method}")
        # what writes stays on the primary
        for model, method in [
            ("crm.lead", "write"),
            ("crm.lead", "action_deal_tick_check"),
            ("crm.lead", "action_deal_force_stage"),
            ("crm.deal.handoff", "acknowledge"),
        ]:
            self.assertFalse(self._rpc_is_readonly(model, method), f"{model}.{method}")

    def test_gate_info_on_replica(self):
        deal = self.deals[0]
        with self._replica(self.user_sales_salesman) as env:
            info = self._rpc(env, "crm.lead", "get_deal_gate_info", deal.ids, self.stage_team1_2.id)
            self.assertEqual(info["deals"][0]["id"], deal.id)
            self.assertEqual(info["deals"][0]["issues"][0]["check_id"], self.check_signed.id)
            self.assertFalse(info["can_override"])
            # the dialog's next call, ticking the item, is a write: the
            # replica refuses it (Odoo sends it to the primary)
            with self.assertRaises(ReadOnlySqlTransaction), mute_logger("odoo.sql_db"):
                self._rpc(env, "crm.lead", "action_deal_tick_check", deal.ids, self.check_signed.id)
                env.flush_all()

    def test_board_on_replica(self):
        with self._replica(self.user_supervisor) as env:
            result = self._rpc(
                env,
                "crm.lead",
                "web_search_read",
                domain=BOARD_DOMAIN,
                specification=BOARD_SPEC,
            )
            records = {record["id"]: record for record in result["records"]}
            self.assertIn(self.deals[0].id, records)
            self.assertNotIn(self.deals[1].id, records)
            late = records[self.deals[0].id]
            self.assertEqual(late["deal_days_in_step"], 20)
            self.assertTrue(late["deal_gate_blocked"])
            groups = self._rpc(
                env,
                "crm.lead",
                "web_read_group",
                domain=BOARD_DOMAIN[:2],
                groupby=["deal_step_id"],
                aggregates=["__count"],
            )
            counts = {group["deal_step_id"][0]: group["__count"] for group in groups["groups"]}
            self.assertEqual(counts[self.step_1.id], 1)
            self.assertEqual(counts[self.step_2.id], 1)
            # a move from the board is a write: refused on the replica
            with self.assertRaises(ReadOnlySqlTransaction), mute_logger("odoo.sql_db"):
                self._rpc(
                    env, "crm.lead", "write", self.deals[1].ids, {"stage_id": self.stage_team1_1.id}
                )
                env.flush_all()

    def test_analyses_on_replica(self):
        sets = [["step_id"], ["step_id", "salesperson_id"], ["salesperson_id"], []]
        with self._replica(self.user_supervisor) as env:
            for report in REPORTS:
                grouping = self._rpc(
                    env, report, "formatted_read_grouping_sets", [], sets, TIME_MEASURES
                )
                by_step = {group["step_id"][0]: group for group in grouping[0]}
                # step 1: deal 0's 20 days (480 h) and deal 1's few seconds,
                # whose exact median is their mean
                step_1 = by_step[self.step_1.id]
                self.assertEqual(step_1["__count"], 2, report)
                self.assertAlmostEqual(step_1["median_hours:avg"], 240, delta=0.01, msg=report)
                self.assertEqual(by_step[self.step_2.id]["__count"], 1, report)
                # the grand total over 480 h, ~0 and ~0: p90 at 0.8 x 480 h
                (total,) = grouping[3]
                self.assertEqual(total["__count"], 3, report)
                self.assertAlmostEqual(total["p90_hours:avg"], 384, delta=0.01, msg=report)
                self.assertLess(total["median_hours:avg"], 0.01, report)

    def _view_spec(self, model, view_type, view_id=False):
        """(web_search_read specification, group-by fields, measures) of a view."""
        arch = etree.fromstring(self.env[model].get_view(view_id, view_type)["arch"])
        model_fields = self.env[model]._fields
        spec, groupby, measures = {}, [], []
        for node in arch.iter("field"):
            field = model_fields[node.get("name")]
            relational = field.type in ("many2one", "many2many", "one2many")
            spec[field.name] = {"fields": {"display_name": {}}} if relational else {}
            if node.get("type") == "measure":
                measures.append(f"{field.name}:{field.aggregator or 'sum'}")
            elif node.get("type") in ("row", "col"):
                groupby.append(field.name)
        return spec, groupby, measures

    def test_every_analysis_and_board_view_on_replica(self):
        """What each view of the analyses and of the control board loads, for
        each kind of reader, on a read-only cursor (a write raises)."""
        board_views = [
            ("kanban", "deal_stages.crm_lead_view_kanban_deal_control"),
            ("list", "deal_stages.crm_lead_view_list_deal_control"),
        ]
        for user in (self.user_supervisor, self.user_sales_manager, self.user_sales_salesman):
            for report in ALL_REPORTS:
                for view_type in ("list", "pivot", "graph"):
                    spec, groupby, measures = self._view_spec(report, view_type)
                    with self._replica(user) as env, self.subTest(user=user.login, view=report):
                        if view_type == "list":
                            self._rpc(env, report, "web_search_read", [], spec, limit=80)
                        else:
                            aggregates = ["__count", *measures]
                            self._rpc(env, report, "formatted_read_group", [], groupby, aggregates)
                            self._rpc(
                                env,
                                report,
                                "formatted_read_grouping_sets",
                                [],
                                [groupby[:1], groupby, []],
                                aggregates,
                            )
                        env.flush_all()
            for view_type, xmlid in board_views:
                spec, __, __ = self._view_spec("crm.lead", view_type, self.env.ref(xmlid).id)
                with self._replica(user) as env, self.subTest(user=user.login, view=xmlid):
                    result = self._rpc(env, "crm.lead", "web_search_read", BOARD_DOMAIN, spec)
                    if user != self.user_sales_salesman:
                        self.assertEqual([r["id"] for r in result["records"]], self.deals[0].ids)
                    self._rpc(
                        env,
                        "crm.lead",
                        "read_progress_bar",
                        BOARD_DOMAIN[:2],
                        "deal_step_id",
                        {"field": "activity_state", "colors": {"overdue": "danger"}},
                    )
                    env.flush_all()

    def test_rpc_over_http_stays_on_the_replica(self):
        """Through the web client's route: the calls run on a read-only cursor
        and never fall back to the primary (Odoo logs a warning and retries
        on a read/write cursor when a read-only call tries to write)."""
        self.authenticate(self.user_supervisor.login, self.user_supervisor.login)
        seen = []
        Lead = type(self.env["crm.lead"])
        StayReport = type(self.env["crm.deal.step.stay.report"])

        def spy(original):
            def method(records, *args, **kwargs):
                seen.append(records.env.cr.readonly)
                return original(records, *args, **kwargs)

            return method

        calls = [
            ("crm.lead", "get_deal_gate_info", [self.deals[0].ids, self.stage_team1_2.id], {}),
            (
                "crm.lead",
                "web_search_read",
                [],
                {"domain": BOARD_DOMAIN, "specification": BOARD_SPEC},
            ),
            (
                "crm.deal.step.stay.report",
                "formatted_read_grouping_sets",
                [[], [["step_id"], []], TIME_MEASURES],
                {},
            ),
        ]
        with (
            patch.object(Lead, "_deal_gate_issues", spy(Lead._deal_gate_issues)),
            patch.object(Lead, "_compute_deal_control", spy(Lead._compute_deal_control)),
            patch.object(StayReport, "_report_prepare", spy(StayReport._report_prepare)),
            self.assertNoLogs("odoo.http", "WARNING"),
        ):
            for model, method, args, kwargs in calls:
                result = self.make_jsonrpc_request(
                    f"/web/dataset/call_kw/{model}.{method}",
                    {"model": model, "method": method, "args": args, "kwargs": kwargs},
                )
                self.assertTrue(result, f"{model}.{method}")
        self.assertEqual(len(seen), 3)
        self.assertTrue(all(seen), "every read ran on a read-only cursor")
