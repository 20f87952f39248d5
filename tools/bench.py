#!/usr/bin/env python3
"""``make bench``: what deal_stages costs, beside vanilla Odoo and native rules.

Creates a fresh database (crm + base_automation + deal_stages, no demo data),
builds the same work four ways and measures every row in this one run:

- *vanilla*: the stage change on deals without a script;
- *native rules*: an automation rule "Stage is set to" with three "Create
  activity" actions and one "Send email" action, built as an admin would;
- *floor*: the vanilla move, then one ``create`` of all the activities and one
  batch of template emails - what a perfect engine could approach;
- *deal_stages*: deals of a team whose script step creates 3 activities, sends
  1 customer email (the step's ``mail_template_id``) and logs 1 history row.

Every measure includes flushing and the precommit hooks (tracking), as a
commit does; each request starts with an empty record cache (the single moves:
on a cursor of its own, as in a server). Prints one table
with the targets of issue 10 and exits 1 if a target fails.

This file is the command line, the choice of rows, ``--profile`` and the
table; the data, the measure and the moves shared by the rows are in
``bench_common.py``, each group of rows in a file of its own: ``bench_moves.py``
(single, bulk), ``bench_manager.py``, ``bench_kanban_sla.py`` (kanban, sla),
``bench_pivot.py`` (data: ``bench_time_in_step.py``), ``bench_handoff.py``,
``bench_migrate.py``.

Usage: tools/bench.py [--db NAME] [--keep] [--reuse] [--profile] [--quick]
                      [--only single|bulk|manager|kanban|sla|pivot|handoff|migrate ...]
"""

import argparse
import os
import platform
import sys
import time
from collections import Counter

from bench_common import LABELS, VARIANTS
from bench_handoff import HandoffBench
from bench_kanban_sla import KanbanSlaBench
from bench_manager import ManagerBench
from bench_migrate import MigrateBench
from bench_moves import MovesBench
from bench_pivot import PivotBench
from odoo_harness import ROOT, Harness, say

ROWS = ("single", "bulk", "manager", "kanban", "sla", "pivot", "handoff", "migrate")


class Bench(MovesBench, ManagerBench, KanbanSlaBench, PivotBench, HandoffBench, MigrateBench):
    """Every row (``bench_<row>``), the profile of one move and the table."""

    def profile(self):
        """Where the queries of one deal_stages move go (``--profile``).

        Three warm-up moves first (ormcaches filled, as in a running server),
        then one move whose statements are listed with the Odoo code that ran
        them and the deal_stages frame on the stack, if any.
        """
        import odoo.sql_db

        ours = str(ROOT / "deal_stages") + "/"
        captured = []
        original = odoo.sql_db.Cursor.execute

        def where(frame):
            return f"{frame.f_code.co_filename.split('/addons/')[-1]}:{frame.f_lineno} " + (
                frame.f_code.co_name
            )

        def execute(cr, query, params=None, log_exceptions=True):
            text = query.code if hasattr(query, "code") else str(query)
            frame, odoo_origin, our_origin = sys._getframe(1), None, None
            while frame:
                path = frame.f_code.co_filename
                if path.startswith(ours):
                    our_origin = our_origin or where(frame).replace(ours, "")
                elif odoo_origin is None and "/addons/" in path and "sql_db" not in path:
                    odoo_origin = where(frame)
                frame = frame.f_back
            captured.append((" ".join(text.split())[:100], odoo_origin or "?", our_origin))
            return original(cr, query, params, log_exceptions)

        deal_ids = self.make_deals(self.team["addon"], 4)
        with self.env(uid=self.mover) as env:
            for deal_id in deal_ids[:3]:
                self.measured(env, lambda d=deal_id: self.move(env, "addon", [d]))
            env.flush_all()
            env.cr.commit()
            env.invalidate_all()
            odoo.sql_db.Cursor.execute = execute
            try:
                self.move(env, "addon", deal_ids[3:])
                env.flush_all()
                env.cr.precommit.run()
                env.flush_all()
            finally:
                odoo.sql_db.Cursor.execute = original
        say(f"\n--profile: {len(captured)} queries for one deal_stages move (warm)")
        say("by deal_stages frame on the stack:")
        for origin, count in Counter(o or "(Odoo only)" for _q, _w, o in captured).most_common():
            say(f"  {count:3}  {origin}")
        say("statements in order:")
        for index, (query, odoo_origin, our_origin) in enumerate(captured, 1):
            say(f"  {index:3}  {query}")
            say(f"         <- {odoo_origin}" + (f"  [{our_origin}]" if our_origin else ""))

    # ------------------------------------------------------------ output

    def print_table(self, header):
        columns = ["", *(LABELS[v] for v in VARIANTS), "target", "result"]
        rows = []
        for row, values, target, ok in self.results:
            status = "" if ok is None else ("PASS" if ok else "FAIL")
            rows.append([row, *(values.get(v, "") for v in VARIANTS), target, status])
        widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
        say("")
        say(header)
        say("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        say("  ".join("-" * w for w in widths))
        for r in rows:
            say("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        for note in self.notes:
            say(f"note: {note}")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0
    return f"{cpu}, {os.cpu_count()} cores, load {load:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("BENCH_DB", "deal_stages_bench"))
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use the existing database (no reinstall)"
    )
    parser.add_argument("--profile", action="store_true", help="list the queries of one move")
    parser.add_argument(
        "--profile-only", action="store_true", help="--profile, no bench (use with --reuse)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1/10 of the SLA, pivot and migrate data (development)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=ROWS,
        help="measure only these rows (repeatable), e.g. --only pivot",
    )
    args = parser.parse_args()
    only = set(args.only or ROWS)
    harness = Harness()
    started = time.monotonic()
    try:
        if not args.reuse:
            say(f"creating database {args.db} (crm, base_automation, deal_stages) ...")
            harness.create_db(args.db)
        registry = harness.registry(args.db)
        bench = Bench(registry, quick=args.quick)
        # the pivot's history is spread over the deal_stages deals only
        variants = VARIANTS if only & {"single", "bulk", "kanban"} else ("addon",)
        bench.setup(deals=not args.profile_only, variants=variants)
        if args.profile or args.profile_only:
            bench.profile()
        if args.profile_only:
            return 0
        for row in ROWS:
            if row in only:
                getattr(bench, f"bench_{row}")()
        with bench.env() as env:
            version = env.cr.execute("SHOW server_version") or env.cr.fetchone()[0]
        from odoo.release import version as odoo_version

        bench.print_table(
            f"make bench - Odoo {odoo_version}, PostgreSQL {version}, {machine()}; "
            f"database {args.db}, {time.monotonic() - started:.0f} s"
        )
    finally:
        if not args.keep:
            try:
                from odoo.modules.registry import Registry

                Registry.delete(args.db)
            except Exception:  # noqa: BLE001, S110 - best effort before the drop
                pass
            harness.drop_db(args.db)
        harness.close()
    if bench.failed:
        say("bench: some targets FAIL")
        return 1
    say("bench: all targets pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
