"""``make bench`` row ``migrate`` (issue 16): publish a new version of a
script and migrate its 10,000 in-flight deals."""

from bench_common import BenchBase
from odoo_harness import say

MIGRATE_DEALS = 10_000


class MigrateBench(BenchBase):
    def bench_migrate(self):
        """Publish a new version and migrate its in-flight deals (issue 16).

        Target: the migration is the engine's move, batched (a stay closed and
        one opened with cause "migrate", the new step's activities, checks and
        deadline, one note per deal), so it must cost per deal no more than
        a bulk move does (<= 8 ms and < 10 queries per deal on this machine's
        bulk rows), and its queries must not grow with the deals one by one
        (batches of 500): 10,000 deals then migrate well within one cron run.
        """
        from odoo import Command

        count = MIGRATE_DEALS // 10 if self.quick else MIGRATE_DEALS
        with self.env() as env:
            team = env["crm.team"].create({"name": "Bench versions"})
            stages = env["crm.stage"].create(
                [
                    {"name": "Bench: offer", "sequence": 1011, "team_ids": team.ids},
                    {"name": "Bench: payment", "sequence": 1012, "team_ids": team.ids},
                ]
            )
            script = env["crm.deal.script"].create(
                {
                    "name": "Bench versioned script",
                    "team_ids": team.ids,
                    "sla_working_time": False,
                    "step_ids": [
                        Command.create({"sequence": 1, "stage_id": stages[0].id}),
                        Command.create({"sequence": 2, "stage_id": stages[1].id}),
                    ],
                }
            )
            team_id, stage_id, script_id = team.id, stages[0].id, script.id
        say(f"migrate: creating {count:,} in-flight deals ...")
        ids = self.make_deals(team_id, count, stage_id=stage_id)
        with self.env(uid=self.manager) as env:
            Script = env["crm.deal.script"]
            draft = Script.browse(Script.browse(script_id).action_new_version())
            first = draft.step_ids.sorted("sequence")[0]
            first.write(
                {
                    "sla_hours": 48,
                    "activity_template_ids": [
                        Command.create(
                            {"activity_type_id": self.activity_type, "summary": "Call back"}
                        )
                    ],
                }
            )

            def publish():
                draft.action_publish(in_flight="migrate")
                # the rest, as the cron does it (without its commits)
                env["crm.lead"]._deal_migrate_run(draft)

            say(f"migrate: publishing and migrating {count:,} deals ...")
            result = self.measured(env, publish)
            migrated = env["crm.lead"].search_count(
                [("id", "in", ids), ("deal_script_id", "=", draft.id)]
            )
        per_deal_ms = result.ms / count
        per_deal_q = result.queries / count
        self.add(
            f"publish + migrate {count:,} in-flight deals",
            {"addon": str(result)},
            f"<= 8 ms/deal ({per_deal_ms:.2f}), < 10 q/deal ({per_deal_q:.2f}), all migrated "
            f"({migrated:,})",
            per_deal_ms <= 8 and per_deal_q < 10 and migrated == count,
        )
