"""``make bench`` rows ``single`` and ``bulk``: the stage move of one deal and
one write moving 200 / 1,000 deals, by their salesperson, four ways (vanilla,
native rules, floor, deal_stages: see ``bench_common``)."""

from bench_common import BULK_SIZES, SINGLE_RUNS, SINGLE_WARMUP, VARIANTS, BenchBase, Measure
from odoo_harness import say


class MovesBench(BenchBase):
    def bench_single(self):
        say("single moves ...")
        measures = {variant: [] for variant in VARIANTS}
        for index in range(SINGLE_WARMUP + SINGLE_RUNS):
            for variant in VARIANTS:
                deal_id = self.deals[variant, "single"][index]
                measure = self.measured_request(
                    self.mover, lambda env, v=variant, d=deal_id: self.move(env, v, [d])
                )
                if index >= SINGLE_WARMUP:
                    measures[variant].append(measure)
        result = {variant: Measure.median(values) for variant, values in measures.items()}
        work = {}
        with self.env() as env:
            for variant in VARIANTS:
                ids = self.deals[variant, "single"]
                act, mails, logs = self.work_done(env, ids)
                work[variant] = f"{act / len(ids):g} act, {mails / len(ids):g} mail, " + (
                    f"{logs / len(ids):g} log" if variant == "addon" else "-"
                )
        vanilla, native, addon = result["vanilla"], result["native"], result["addon"]
        # issue 18: raised from 1.0x native and vanilla+25
        ok_time = addon.seconds <= 0.8 * native.seconds
        ok_queries = addon.queries <= vanilla.queries + 20
        self.add_variants(
            f"single move (median of {SINGLE_RUNS})",
            result,
            f"<= 0.8x native ({addon.seconds / native.seconds:.2f}x), "
            f"<= vanilla+20 q (+{addon.queries - vanilla.queries})",
            ok_time and ok_queries,
        )
        self.add("  work done per move", work, "", None)
        self.single = result

    def bench_bulk(self):
        for size in BULK_SIZES:
            say(f"bulk moves of {size} deals ...")
            result = {}
            with self.env(uid=self.mover) as env:
                for variant in VARIANTS:
                    ids = self.deals[variant, size]
                    result[variant] = self.measured(
                        env, lambda v=variant, i=ids: self.move(env, v, i)
                    )
            extra = self.per_deal_above(result, "vanilla", size)
            floor_extra = self.per_deal_above(result, "vanilla", size, variant="floor")
            ratio = result["addon"].seconds / result["floor"].seconds
            # issue 18: raised from 1.5x the floor
            self.add_variants(
                f"one write moving {size:,} deals",
                result,
                f"<= 1.1x floor ({ratio:.2f}x), < 0.5 q/deal above vanilla "
                f"({extra:.2f}; floor {floor_extra:.2f})",
                ratio <= 1.1 and extra < 0.5,
            )
            self.check_work_done("bulk", self.deals["addon", size])
