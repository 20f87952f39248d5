"""Time the time-in-step analyses over a large stage history.

Run inside an Odoo shell on a database where deal_stages is installed:

    odoo-bin shell -d DB --addons-path=... < tools/bench_time_in_step.py

Environment: BENCH_LOGS (default 1,000,000 stage log rows), BENCH_DEALS
(default 100,000 deals), BENCH_KEEP=1 to commit the generated rows (by default
everything is rolled back). Rows are made with batch SQL (generate_series), in
a script of 7 steps, 20 salespeople, a lost deal in ten. The rows bypass the
ORM, so the per-deal totals (crm.deal.step.total) are rebuilt once after them.
Without BENCH_KEEP the rows are never committed, hence never vacuumed: index-only
scans then read the table too (pessimistic); with BENCH_KEEP=1 they are
vacuumed as autovacuum would, and a second run reuses them.
Prints the median time of the pivot's calls (as the web client makes them) for
a sales manager, a team leader and a salesperson.

``generate`` makes the data of ``tools/bench.py --only pivot`` too (which
measures its rows against the targets of issue 18): this file is also a module,
whose body runs only in the shell.
"""

import functools
import os
import statistics
import time
from datetime import timedelta

from odoo import Command, fields
from odoo.tools import SQL

LOGS = int(os.environ.get("BENCH_LOGS", "1000000"))
DEALS = int(os.environ.get("BENCH_DEALS", "100000"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
RUNS = 5
# odoo-bin shell buffers stdout
print = functools.partial(print, flush=True)

SALESPEOPLE = 20
SCRIPT_NAME = "Bench pivot script"
TABLES = ("crm_lead", "crm_deal_stage_log", "crm_deal_step_total")


def generate(env, deals, logs, tag=None):
    """Create the bench users, teams, script, deals and stage history.

    ``deals`` deals of a 7-step script, ``logs`` stays spread over them,
    written by batch SQL; the per-deal totals are rebuilt once after them.
    Also used by ``tools/bench.py --only pivot``. Returns the salespeople,
    the team leader, a sales manager and the seconds the rebuild took.
    """
    tag = tag or time.time_ns()
    users = (
        env["res.users"]
        .with_context(no_reset_password=True, mail_create_nolog=True)
        .create(
            [
                {
                    "name": f"Bench Pivot Salesperson {index}",
                    "login": f"bench_pivot_sales_{index}_{tag}",
                    "group_ids": [Command.link(env.ref("sales_team.group_sale_salesman").id)],
                }
                for index in range(SALESPEOPLE)
            ]
            + [
                {
                    "name": "Bench Team Leader",
                    "login": f"bench_leader_{tag}",
                    "group_ids": [Command.link(env.ref("deal_stages.group_deal_supervisor").id)],
                },
                {
                    "name": "Bench Pivot Manager",
                    "login": f"bench_pivot_manager_{tag}",
                    "group_ids": [Command.link(env.ref("sales_team.group_sale_manager").id)],
                },
            ]
        )
    )
    salespeople, leader, manager = users[:SALESPEOPLE], users[-2], users[-1]
    teams = env["crm.team"].create(
        [{"name": "Bench Pivot A", "user_id": leader.id}, {"name": "Bench Pivot B"}]
    )
    stages = env["crm.stage"].create(
        [{"name": f"Bench Pivot {index}", "sequence": 1100 + index} for index in range(7)]
    )
    script = env["crm.deal.script"].create(
        {
            "name": SCRIPT_NAME,
            "team_ids": [Command.set(teams.ids)],
            "step_ids": [
                Command.create({"sequence": index, "stage_id": stage.id})
                for index, stage in enumerate(stages)
            ],
        }
    )
    env.flush_all()
    _insert_history(env, teams, salespeople, stages, script, deals, logs)
    # the history was written by SQL, bypassing the ORM that keeps the
    # per-deal totals: rebuild them once
    started = time.perf_counter()
    env["crm.deal.step.total"]._rebuild()
    return salespeople, leader, manager, time.perf_counter() - started


def _insert_history(env, teams, salespeople, stages, script, deals, logs):
    """The deals and their stays, by batch SQL (generate_series)."""
    params = {
        "teams": teams.ids,
        "users": salespeople.ids,
        "nusers": len(salespeople),
        "company": env.company.id,
        "stages": stages.ids,
        "script": script.id,
        "steps": script.step_ids.sorted("sequence").ids,
        "deals": deals,
        "per_deal": max(logs // deals, 1),
    }
    env.cr.execute(
        SQL(
            """
            INSERT INTO crm_lead (name, type, active, probability, won_status, team_id,
                                  user_id, company_id, stage_id, deal_script_id,
                                  deal_step_id, expected_revenue, date_closed,
                                  date_last_stage_update, create_date, write_date)
            SELECT 'Bench pivot deal ' || n, 'opportunity', n %% 10 != 0,
                   CASE WHEN n %% 10 = 0 THEN 0 ELSE 50 END,
                   CASE WHEN n %% 10 = 0 THEN 'lost' ELSE 'pending' END,
                   (%(teams)s::int[])[1 + n %% 2], (%(users)s::int[])[1 + n %% %(nusers)s],
                   %(company)s, (%(stages)s::int[])[1 + n %% 7], %(script)s,
                   (%(steps)s::int[])[1 + n %% 7], 1000 + n %% 5000,
                   CASE WHEN n %% 10 = 0 THEN now() - interval '1 day' END,
                   now() - interval '1 day', now() - interval '400 days', now()
              FROM generate_series(1, %(deals)s) n
            """,
            **params,
        )
    )
    # deal i gets logs/deals consecutive stays walking the steps (with
    # returns), 1 to 200 hours each; the last stay of each deal is open
    env.cr.execute(
        SQL(
            """
            INSERT INTO crm_deal_stage_log (
                lead_id, script_id, step_id, stage_id, user_id, salesperson_id, team_id,
                lead_user_id, lead_team_id, company_id, date_in, date_out, duration_hours,
                cause, sla_breached, entry_done)
            SELECT lead.id, %(script)s, (%(steps)s::int[])[1 + (k + lead.id) %% 7],
                   (%(stages)s::int[])[1 + (k + lead.id) %% 7], lead.user_id,
                   lead.user_id, lead.team_id, lead.user_id, lead.team_id, lead.company_id,
                   now() - interval '400 days' + (k * interval '30 hours'),
                   CASE WHEN k < %(per_deal)s - 1 THEN now() - interval '400 days'
                        + (k * interval '30 hours') + ((1 + (k * 7919 + lead.id) %% 200)
                        * interval '1 hour') END,
                   CASE WHEN k < %(per_deal)s - 1 THEN 1 + (k * 7919 + lead.id) %% 200 END,
                   CASE WHEN k %% 25 = 0 THEN 'override' ELSE 'move' END,
                   (k * 7919 + lead.id) %% 200 > 150, TRUE
              FROM crm_lead lead
             CROSS JOIN generate_series(0, %(per_deal)s - 1) k
             WHERE lead.deal_script_id = %(script)s
            """,
            **params,
        )
    )


def vacuum(registry, tables):
    """VACUUM ANALYZE ``tables`` as autovacuum does after a bulk insert
    (statistics, visibility map for index-only scans); outside a transaction."""
    with registry.cursor() as vacuum_cr:
        vacuum_cr.rollback()
        vacuum_cr._cnx.autocommit = True
        try:
            for table in tables:
                vacuum_cr.execute(SQL("SELECT to_regclass(%s)", table))
                if vacuum_cr.fetchone()[0]:
                    vacuum_cr.execute(SQL("VACUUM ANALYZE %s", SQL.identifier(table)))
        finally:
            vacuum_cr._cnx.autocommit = False


def time_pivot(env, label, model, user, grouping_sets, aggregates, domain=()):
    """Print the median time of RUNS pivot loads of ``model`` by ``user``."""
    Model = env[model].with_user(user)
    timings = []
    for __ in range(RUNS):
        env.invalidate_all()
        start = time.perf_counter()
        Model.formatted_read_grouping_sets(list(domain), grouping_sets, aggregates)
        timings.append(time.perf_counter() - start)
    print(
        f"{label:70s} median {statistics.median(timings) * 1000:7.0f} ms"
        f"  (min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f})"
    )


def time_pivots(env, salesperson, leader, manager):
    """The pivot's calls as the web client makes them, by role."""
    by_step = [["step_id"], []]
    by_salesperson = [["step_id"], ["step_id", "salesperson_id"], ["salesperson_id"], []]
    stay = ["__count", "hours:avg", "median_hours:avg", "p90_hours:avg"]
    deal = [*stay, "stay_count:sum"]
    funnel = ["reached_count:sum", "moved_on_count:sum", "lost_count:sum", "conversion_rate:avg"]
    last_30_days = [("date_in", ">=", fields.Datetime.now() - timedelta(days=30))]
    stay_report, deal_report = "crm.deal.step.stay.report", "crm.deal.step.time.report"
    rows = [
        (f"time in step per stay, by step ({label})", stay_report, user, by_step, stay, ())
        for label, user in (
            ("sales manager", manager),
            ("team leader", leader),
            ("salesperson", salesperson),
        )
    ]
    rows += [
        (
            "time in step per stay, step x salesperson (sales manager)",
            *(stay_report, manager, by_salesperson, stay, ()),
        ),
        (
            "time in step per stay, entered in the last 30 days (sales manager)",
            *(stay_report, manager, by_step, stay, last_30_days),
        ),
        ("time in step per deal, by step (sales manager)", deal_report, manager, by_step, deal, ()),
        (
            "time in step per deal, step x salesperson (sales manager)",
            *(deal_report, manager, by_salesperson, deal, ()),
        ),
        ("time in step per deal, by step (team leader)", deal_report, leader, by_step, deal, ()),
        (
            "time in step per deal, by step (salesperson)",
            *(deal_report, salesperson, by_step, deal, ()),
        ),
        (
            "step funnel, by step (sales manager)",
            *("crm.deal.step.funnel.report", manager, by_step, funnel, ()),
        ),
    ]
    for label, model, user, grouping_sets, aggregates, domain in rows:
        time_pivot(env, label, model, user, grouping_sets, aggregates, domain)


def main(env):
    cr = env.cr
    Users = env["res.users"]
    if env["crm.deal.script"].search([("name", "=", SCRIPT_NAME)], limit=1):
        # a database kept from a previous run (BENCH_KEEP=1, bench.py --keep):
        # measure only
        print("reusing the bench data already in the database")
        users = Users.search([("name", "like", "Bench Pivot Salesperson")], order="id")
        leader = Users.search([("name", "=", "Bench Team Leader")], limit=1)
        manager = Users.search([("name", "=", "Bench Pivot Manager")], limit=1)
    else:
        started = time.perf_counter()
        users, leader, manager, rebuild = generate(env, DEALS, LOGS)
        print(f"per-deal totals rebuilt in {rebuild:.1f} s")
        for table in TABLES:
            cr.execute(SQL("ANALYZE %s", SQL.identifier(table)))
        total_logs = env.execute_query(SQL("SELECT COUNT(*) FROM crm_deal_stage_log"))[0][0]
        elapsed = time.perf_counter() - started
        print(f"generated {DEALS} deals, {total_logs} log rows in {elapsed:.1f} s")
        if KEEP:
            # committed: VACUUM ANALYZE as autovacuum would after a bulk insert
            # (the visibility map lets the analyses read their indexes alone)
            cr.commit()
            vacuum(env.registry, TABLES)
    time_pivots(env, users[0], leader, manager)
    if KEEP:
        cr.commit()
    else:
        cr.rollback()


if __name__ == "__main__":  # odoo-bin shell runs stdin as __main__, with env
    main(env)  # noqa: F821 (provided by odoo-bin shell)
