#!/usr/bin/env python3
"""``make load``: deal_stages under concurrent RPC clients and several workers.

Creates a fresh demo database, starts Odoo with ``--workers=2`` and one cron
thread on the loopback interface, runs 10 XML-RPC clients at once for 60 s
(salespeople and an administrator moving deals forward and back, ticking
checklists, changing deals and orders) plus a sales manager moving the
team's deals (other people's) several in one write, stops Odoo, then checks
in the database that nothing was lost or duplicated:

- every deal's stage history is a gap-free chain (each stay ends when the next
  begins and the next starts from the stage it ended in), with exactly one open
  stay per deal that follows a script, in the deal's current stage;
- no deal has two open activities of the same script activity template;
- no deal left a step with a required checklist item not done (gates);
- no activity created by the engine sent Odoo's "assigned to you" message
  of its own: each assignee is told once per transaction (issue 18);
- no server error: faults other than the expected refusals (UserError,
  ValidationError, AccessError) and unanswered requests count as errors;
- hand-offs: step 4 of the script hands the order off to the reference
  receiver (tools/handoff_receiver.py, in this process), which fails a share
  of the requests and is restarted once during the run; at the end every
  hand-off is stored exactly once at the receiver (duplicates sent are
  counted), none is left pending, and no deal left the step without its
  acknowledgement.

Prints the operations per second and the invariants; exits 1 on a violation.

This file is the command line and the report; the clients are in
``load_clients.py``, the server, the data and the receiver of a run in
``load_run.py``, the checks in ``load_checks.py``.

Usage: tools/load.py [--db NAME] [--port N] [--seconds 60] [--clients 10] [--keep]
"""

import argparse
import os
import sys
import time
from collections import Counter

from devenv_odoo import ensure_admin_password
from load_run import LoadRun
from odoo_harness import Harness, say


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("LOAD_DB", "deal_stages_load"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOAD_PORT", "0")))
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("LOAD_SECONDS", "60")))
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--deals", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="use the existing database")
    args = parser.parse_args()
    harness = Harness()
    run = LoadRun(args, harness)
    try:
        if not args.reuse:
            say(f"creating demo database {args.db} with deal_stages ...")
            seconds = harness.create_db(args.db, demo=True)
            say(f"  installed in {seconds:.0f} s")
        ensure_admin_password(harness.pg, args.db)
        run.start_server()
        run.prepare()
        say(f"{len(run.clients)} clients for {args.seconds} s ...")
        run.deadline = time.monotonic() + args.seconds
        # the history the clients write begins here (demo data holds older stays)
        run.started_at = harness.pg.query("SELECT now() AT TIME ZONE 'utc'", dbname=args.db)[0][0]
        elapsed, stuck = run.run_clients()
    finally:
        run.stop_server()
        if run.receiver:
            run.receiver.stop()
    total, outcomes, errors = report_operations(run, elapsed)
    failed = report_invariants(run, outcomes, errors, stuck)
    if not args.keep:
        harness.drop_db(args.db)
    harness.close()
    if total == 0:
        say("load: no operation ran")
        return 1
    say("load: " + ("FAIL" if failed else "all invariants hold, no server error"))
    return 1 if failed else 0


def report_operations(run, elapsed):
    """Print the clients' operations and latencies; (total, outcomes, errors)."""
    ops, outcomes, errors = Counter(), Counter(), []
    for client in run.clients:
        ops.update(client.ops)
        outcomes.update(client.outcomes)
        errors += client.errors
    total = sum(ops.values())
    latencies = sorted(run.latencies)
    say("")
    say(f"make load - {len(run.clients)} XML-RPC clients, {elapsed:.0f} s, Odoo --workers=2 + cron")
    say(f"operations: {total:,} ({total / elapsed:.1f}/s)")
    for name, count in ops.most_common():
        say(f"  {name:<14} {count:6,}  ({count / elapsed:.1f}/s)")
    if latencies:
        median = latencies[len(latencies) // 2]
        p95 = latencies[int(len(latencies) * 0.95)]
        say(f"latency: median {median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    for name, count in outcomes.most_common():
        say(f"  {name:<38} {count:6,}")
    return total, outcomes, errors


def report_invariants(run, outcomes, errors, stuck):
    """Print the invariants and the first errors; True when one is violated."""
    invariants, stays = run.invariants()
    log_errors, retried = run.server_log_errors()
    say(f"  serialization failures rolled back and retried: {retried}")
    invariants.append(("server errors (faults, no answer)", outcomes["SERVER ERROR"]))
    invariants.append(("errors in the server log (not retried)", len(log_errors)))
    invariants.append(("clients stuck at the end", len(stuck)))
    say(f"invariants ({stays:,} stays checked):")
    failed = False
    for name, value in invariants:
        status = "ok  " if not value else "FAIL"
        failed = failed or bool(value)
        say(f"  {status}  {name}: {value}")
    for line in (errors + log_errors)[:10]:
        say(f"  error: {line}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
