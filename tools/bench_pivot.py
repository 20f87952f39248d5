"""``make bench`` rows ``pivot``: the time-in-step analyses over a history of
1,000,000 stays (100,000 deals), made by ``generate`` of
``tools/bench_time_in_step.py``, as a sales manager and as a team leader."""

from bench_common import BenchBase
from odoo_harness import say

PIVOT_ROWS = 1_000_000
PIVOT_RUNS = 5
PIVOT_DEALS = 100_000
# the time-in-step analyses read by the pivot rows: (model, group by, measures)
REPORT_TARGETS = [
    (
        "crm.deal.step.time.report",
        "step_id",
        ["hours:avg", "median_hours:avg", "p90_hours:avg", "stay_count:sum"],
    ),
    ("crm.deal.step.stay.report", "step_id", ["hours:avg", "median_hours:avg", "p90_hours:avg"]),
]


class PivotBench(BenchBase):
    def bench_pivot(self):
        """The time-in-step analyses over a large history (the data of
        tools/bench_time_in_step.py): 100,000 deals of a 7-step script, 10
        stays each, 20 salespeople, two teams, a lost deal in ten.

        Rows: the pivot by step as a sales manager (history, per deal, per
        stay); the pivot crossed by salesperson (step x salesperson, exact
        median and p90, every total) as a sales manager; a team leader's
        pivots, whose record rules join the deal to its team.
        """
        rows = PIVOT_ROWS // 10 if self.quick else PIVOT_ROWS
        deals = PIVOT_DEALS // 10 if self.quick else PIVOT_DEALS
        say(f"pivot: generating {deals:,} deals, {rows:,} stage log rows ...")
        self.pivot_data(deals, rows)
        targets = [("crm.deal.stage.log", "step_id", ["duration_hours:avg"])]
        targets += REPORT_TARGETS
        for model, groupby, measures in targets:
            measure = self.pivot_measure(self.manager, model, [[groupby], []], measures)
            self.add_time(
                f"pivot time in step, {rows:,} rows ({model}, median of {PIVOT_RUNS})",
                measure,
                1,
            )
        self.bench_pivot_salesperson(rows)
        self.bench_pivot_leader(rows)

    def bench_pivot_salesperson(self, rows):
        """Step x salesperson as a sales manager: every cell, row and column
        total with its exact median and 90th percentile (issue 18)."""
        sets = [["step_id"], ["step_id", "salesperson_id"], ["salesperson_id"], []]
        for model, __, measures in REPORT_TARGETS:
            measure = self.pivot_measure(self.manager, model, sets, measures)
            self.add_time(
                f"pivot step x salesperson, {rows:,} rows ({model}, sales manager)",
                measure,
                1,
            )

    def bench_pivot_leader(self, rows):
        """A team leader's pivots by step: the record rules (deals of the
        teams they lead, or their own) select half of the history."""
        for model, groupby, measures in REPORT_TARGETS:
            measure = self.pivot_measure(self.pivot_leader, model, [[groupby], []], measures)
            self.add_time(
                f"pivot time in step, {rows:,} rows ({model}, team leader)",
                measure,
                0.5,
            )

    def pivot_measure(self, uid, model, grouping_sets, measures):
        """Median of PIVOT_RUNS pivot loads (all the groupings the web client
        asks for in one call, every measure of the view) by user ``uid``."""
        with self.env(uid=uid) as env:
            Model = env[model]

            def read():
                Model.formatted_read_grouping_sets([], grouping_sets, [*measures, "__count"])

            read()  # warm the caches (ACL, rules) as a second pivot load does
            runs = [self.measured(env, read) for __ in range(PIVOT_RUNS)]
        return sorted(runs, key=lambda m: m.seconds)[len(runs) // 2]

    def pivot_data(self, deals, rows):
        """Deals and stays of the pivot rows, written by SQL in batch, then
        vacuumed as autovacuum would."""
        from bench_time_in_step import TABLES, generate, vacuum

        with self.env() as env:
            __, leader, __, rebuild = generate(env, deals, rows, tag=self.tag)
            self.pivot_leader = leader.id
        self.notes.append(
            f"pivot: per-deal totals of {rows:,} stays rebuilt in "
            f"{rebuild:.1f} s (once, after the SQL insert)"
        )
        vacuum(self.registry, TABLES)
