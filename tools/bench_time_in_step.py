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
a sales manager, a team leader and a salesperson. The same data and rows are
in ``tools/bench.py --only pivot`` (with the targets of issue 18).
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

env = env  # noqa: F821, PLW0127 (provided by odoo-bin shell)
cr = env.cr


def generate():
    """Create the bench users, teams, script, deals and stage history."""
    users = env["res.users"].create(
        [
            {
                "name": f"Bench Salesperson {index}",
                "login": f"bench_sales_{index}_{time.time_ns()}",
                "group_ids": [Command.link(env.ref("sales_team.group_sale_salesman").id)],
            }
            for index in range(20)
        ]
    )
    leader = env["res.users"].create(
        {
            "name": "Bench Team Leader",
            "login": f"bench_leader_{time.time_ns()}",
            "group_ids": [Command.link(env.ref("deal_stages.group_deal_supervisor").id)],
        }
    )
    manager = env["res.users"].create(
        {
            "name": "Bench Manager",
            "login": f"bench_manager_{time.time_ns()}",
            "group_ids": [Command.link(env.ref("sales_team.group_sale_manager").id)],
        }
    )
    teams = env["crm.team"].create(
        [{"name": "Bench Team A", "user_id": leader.id}, {"name": "Bench Team B"}]
    )
    stages = env["crm.stage"].create(
        [{"name": f"Bench Stage {index}", "sequence": 100 + index} for index in range(7)]
    )
    script = env["crm.deal.script"].create(
        {
            "name": "Bench script",
            "team_ids": [Command.set(teams.ids)],
            "step_ids": [
                Command.create({"sequence": index, "stage_id": stage.id})
                for index, stage in enumerate(stages)
            ],
        }
    )
    steps = script.step_ids.sorted("sequence")
    env.flush_all()

    started = time.perf_counter()
    lead_ids = [
        row[0]
        for row in env.execute_query(
            SQL(
                """
                INSERT INTO crm_lead (name, type, active, probability, won_status, team_id,
                                      user_id, company_id, stage_id, deal_script_id,
                                      deal_step_id, expected_revenue, date_closed,
                                      date_last_stage_update, create_date, write_date)
                SELECT 'Bench deal ' || n, 'opportunity', n %% 10 != 0,
                       CASE WHEN n %% 10 = 0 THEN 0 ELSE 50 END,
                       CASE WHEN n %% 10 = 0 THEN 'lost' ELSE 'pending' END,
                       (%(teams)s)[1 + n %% 2], (%(users)s)[1 + n %% 20], %(company)s,
                       (%(stages)s)[1 + n %% 7], %(script)s, (%(steps)s)[1 + n %% 7],
                       1000 + n %% 5000,
                       CASE WHEN n %% 10 = 0 THEN now() - interval '1 day' END,
                       now() - interval '1 day', now() - interval '400 days', now()
                  FROM generate_series(1, %(deals)s) n
                RETURNING id
                """,
                teams=teams.ids,
                users=users.ids,
                company=env.company.id,
                stages=stages.ids,
                script=script.id,
                steps=steps.ids,
                deals=DEALS,
            )
        )
    ]
    # stays: deal i gets LOGS/DEALS consecutive stays walking the steps (with
    # returns), 1 to 200 hours each; the last stay of each deal is open
    cr.execute(
        SQL(
            """
            INSERT INTO crm_deal_stage_log (lead_id, script_id, step_id, stage_id, user_id,
                                            salesperson_id, team_id, lead_user_id,
                                            lead_team_id, company_id, date_in, date_out,
                                            duration_hours, cause, sla_breached, entry_done)
            SELECT lead.id, %(script)s, (%(steps)s)[1 + (k + lead.id) %% 7],
                   (%(stages)s)[1 + (k + lead.id) %% 7], lead.user_id, lead.user_id,
                   lead.team_id, lead.user_id, lead.team_id, lead.company_id,
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
            script=script.id,
            steps=steps.ids,
            stages=stages.ids,
            per_deal=LOGS // DEALS,
        )
    )
    if "crm.deal.step.total" in env:
        # the history was written by SQL, bypassing the ORM that keeps the
        # per-deal totals: rebuild them once
        rebuild = time.perf_counter()
        env["crm.deal.step.total"]._rebuild()
        print(f"per-deal totals rebuilt in {time.perf_counter() - rebuild:.1f} s")
    cr.execute("ANALYZE crm_lead")
    cr.execute("ANALYZE crm_deal_stage_log")
    if "crm.deal.step.total" in env:
        cr.execute("ANALYZE crm_deal_step_total")
    total_logs = env.execute_query(SQL("SELECT COUNT(*) FROM crm_deal_stage_log"))[0][0]
    elapsed = time.perf_counter() - started
    print(f"generated {len(lead_ids)} deals, {total_logs} log rows in {elapsed:.1f} s")
    return users, leader, manager


existing = env["crm.deal.script"].search([("name", "=", "Bench script")], limit=1)
if existing:
    # a database kept from a previous run (BENCH_KEEP=1): measure only
    print("reusing the bench data already in the database")
    users = env["res.users"].search([("name", "like", "Bench Salesperson")], order="id")
    leader = env["res.users"].search([("name", "=", "Bench Team Leader")], limit=1)
    manager = env["res.users"].search([("name", "=", "Bench Manager")], limit=1)
else:
    users, leader, manager = generate()
    if KEEP:
        # committed: VACUUM ANALYZE as autovacuum would after a bulk insert
        # (the visibility map lets the analyses read their indexes alone)
        cr.commit()
        with env.registry.cursor() as vacuum_cr:
            vacuum_cr.rollback()
            vacuum_cr._cnx.autocommit = True
            for table in ("crm_lead", "crm_deal_stage_log", "crm_deal_step_total"):
                vacuum_cr.execute(SQL("SELECT to_regclass(%s)", table))
                if vacuum_cr.fetchone()[0]:
                    vacuum_cr.execute(SQL("VACUUM ANALYZE %s", SQL.identifier(table)))
            vacuum_cr._cnx.autocommit = False


def bench(label, model, user, grouping_sets, aggregates, domain=()):
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


PIVOT = [["step_id"], []]
STAY_MEASURES = ["__count", "hours:avg", "median_hours:avg", "p90_hours:avg"]
DEAL_MEASURES = STAY_MEASURES + ["stay_count:sum"]
for label, user in (("sales manager", manager), ("team leader", leader), ("salesperson", users[0])):
    bench(
        f"time in step per stay, by step ({label})",
        "crm.deal.step.stay.report",
        user,
        PIVOT,
        STAY_MEASURES,
    )
bench(
    "time in step per stay, step x salesperson (sales manager)",
    "crm.deal.step.stay.report",
    manager,
    [["step_id"], ["step_id", "salesperson_id"], ["salesperson_id"], []],
    STAY_MEASURES,
)
bench(
    "time in step per stay, entered in the last 30 days (sales manager)",
    "crm.deal.step.stay.report",
    manager,
    PIVOT,
    STAY_MEASURES,
    domain=[("date_in", ">=", fields.Datetime.now() - timedelta(days=30))],
)
bench(
    "time in step per deal, by step (sales manager)",
    "crm.deal.step.time.report",
    manager,
    PIVOT,
    DEAL_MEASURES,
)
bench(
    "time in step per deal, step x salesperson (sales manager)",
    "crm.deal.step.time.report",
    manager,
    [["step_id"], ["step_id", "salesperson_id"], ["salesperson_id"], []],
    DEAL_MEASURES,
)
bench(
    "time in step per deal, by step (team leader)",
    "crm.deal.step.time.report",
    leader,
    PIVOT,
    DEAL_MEASURES,
)
bench(
    "time in step per deal, by step (salesperson)",
    "crm.deal.step.time.report",
    users[0],
    PIVOT,
    DEAL_MEASURES,
)
bench(
    "step funnel, by step (sales manager)",
    "crm.deal.step.funnel.report",
    manager,
    PIVOT,
    ["reached_count:sum", "moved_on_count:sum", "lost_count:sum", "conversion_rate:avg"],
)

if KEEP:
    cr.commit()
else:
    cr.rollback()
