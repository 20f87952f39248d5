"""What ``make load`` (``tools/load.py``) checks in the database after a run:
nothing lost or duplicated (see ``load.py``), read straight from PostgreSQL
once the server is stopped, and the errors of the server log."""

from collections import Counter

from odoo_harness import say

# each stay with the cause of the next one (what left it) and the next step
STAYS_LEFT = """
    WITH l AS (
        SELECT id, lead_id, step_id, date_out,
               lead(cause) OVER w AS left_by,
               lead(step_id) OVER w AS next_step_id
          FROM crm_deal_stage_log
        WINDOW w AS (PARTITION BY lead_id ORDER BY date_in, id))
"""


class LoadChecks:
    """The checks of a run (``LoadRun``): its database, the start of the
    clients' work (``started_at``), the receiver and the server log."""

    def sql(self, query, args=()):
        """The rows of ``query`` on the run's database."""
        return self.harness.pg.query(query, args, dbname=self.db)

    def handoff_invariants(self):
        """Every hand-off stored once at the receiver, acknowledged before its
        deal left the step."""
        q = self.sql
        results = []
        rows = q("SELECT idempotency_key, state FROM crm_deal_handoff")
        states = Counter(state for __, state in rows)
        keys = {key for key, state in rows if state != "cancelled"}
        stored = set(self.receiver.state.stored)
        say(
            f"hand-offs: {len(rows):,} ({', '.join(f'{n} {s}' for s, n in states.items())}); "
            f"receiver: {len(self.receiver.state.log):,} requests, {len(stored):,} stored, "
            f"{self.receiver.state.duplicates:,} duplicates sent (deduplicated)"
        )
        results.append(
            ("hand-offs left pending or unacknowledged", len(keys) - states["acknowledged"])
        )
        results.append(("hand-offs never stored by the receiver", len(keys - stored)))
        # one order per deal and step, one change per order change: the same
        # document stored under two keys would be a duplicate the receiver
        # cannot see (a repeated key is a duplicate sent, counted above)
        documents = Counter(
            (
                entry["payload"]["deal"]["id"],
                entry["payload"]["deal"]["step"],
                entry["payload"]["event"],
                (entry["payload"].get("change") or {}).get("name"),
            )
            for entry in self.receiver.state.stored.values()
        )
        results.append(
            ("documents stored twice at the receiver", sum(n - 1 for n in documents.values()))
        )
        past = q(
            STAYS_LEFT
            + """
            SELECT count(DISTINCT l.id)
              FROM l
              JOIN crm_deal_script_step cur
                ON cur.id = l.step_id AND cur.handoff_required
               AND cur.handoff_endpoint_id IS NOT NULL
              LEFT JOIN crm_deal_script_step nxt ON nxt.id = l.next_step_id
             WHERE l.date_out >= %s AND l.left_by IN ('move', 'auto')
               AND (nxt.id IS NULL OR (nxt.sequence, nxt.id) > (cur.sequence, cur.id))
               AND NOT EXISTS (
                   SELECT 1 FROM crm_deal_handoff h
                    WHERE h.lead_id = l.lead_id AND h.step_id = l.step_id
                      AND h.state = 'acknowledged' AND h.date_acknowledged <= l.date_out)
            """,
            [self.started_at],
        )[0][0]
        results.append(("deal left a step before its hand-off was acknowledged", past))
        return results

    def invariants(self):
        """(name, violations) of every invariant, and the stays checked."""
        results, stays = self.history_invariants()
        results += self.work_invariants()
        results += self.handoff_invariants()
        return results, stays

    def history_invariants(self):
        """Each deal's stays: a gap-free chain, one open stay in its stage."""
        q = self.sql
        results = []
        chain = q(
            """
            WITH l AS (
                SELECT lead_id, stage_id, date_out,
                       lead(id) OVER w AS next_id,
                       lead(date_in) OVER w AS next_in,
                       lead(from_stage_id) OVER w AS next_from
                  FROM crm_deal_stage_log
                WINDOW w AS (PARTITION BY lead_id ORDER BY date_in, id))
            SELECT count(*) FILTER (WHERE next_id IS NOT NULL
                                      AND date_out IS DISTINCT FROM next_in),
                   count(*) FILTER (WHERE next_id IS NOT NULL
                                      AND next_from IS DISTINCT FROM stage_id),
                   count(*) FILTER (WHERE next_id IS NOT NULL AND date_out IS NULL),
                   count(*)
              FROM l
            """
        )[0]
        results.append(("history: stay not ending when the next begins", chain[0]))
        results.append(("history: next stay not starting from the stage left", chain[1]))
        results.append(("history: open stay followed by another", chain[2]))
        open_stays = q(
            """
            SELECT count(*) FILTER (WHERE n <> 1),
                   count(*) FILTER (WHERE n = 1 AND open_stage IS DISTINCT FROM stage_id)
              FROM (SELECT lead.id, lead.stage_id, count(log.id) AS n,
                           max(log.stage_id) AS open_stage
                      FROM crm_lead lead
                      LEFT JOIN crm_deal_stage_log log
                        ON log.lead_id = lead.id AND log.date_out IS NULL
                     WHERE lead.deal_script_id IS NOT NULL AND lead.active
                       AND lead.type = 'opportunity'
                     GROUP BY lead.id) per_deal
            """
        )[0]
        results.append(("deals with a script without exactly one open stay", open_stays[0]))
        results.append(("open stay in another stage than the deal's", open_stays[1]))
        return results, chain[3]

    def work_invariants(self):
        """The engine's work: activities, gates, notifications."""
        q = self.sql
        results = []
        duplicates = q(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM mail_activity
                 WHERE res_model = 'crm.lead' AND deal_script_activity_id IS NOT NULL
                   AND active
                 GROUP BY res_id, deal_script_activity_id HAVING count(*) > 1) d
            """
        )[0][0]
        results.append(("duplicate open activity per (deal, template)", duplicates))
        # a stay is left by the cause of the next stay: only moves and
        # automatic advances go through the gate (override, order change,
        # lost and restore do not), and only forward (to a later step or
        # out of the script): going back to a return step needs nothing;
        # stays left before the run (demo history) are not the clients'
        past_gate = q(
            STAYS_LEFT
            + """
            SELECT count(DISTINCT l.id)
              FROM l
              JOIN crm_deal_script_step cur ON cur.id = l.step_id
              LEFT JOIN crm_deal_script_step nxt ON nxt.id = l.next_step_id
              JOIN crm_deal_check chk
                ON chk.lead_id = l.lead_id AND chk.step_id = l.step_id
              JOIN crm_deal_script_check tmpl ON tmpl.id = chk.check_id
             WHERE l.date_out >= %s AND l.left_by IN ('move', 'auto')
               AND (nxt.id IS NULL OR (nxt.sequence, nxt.id) > (cur.sequence, cur.id))
               AND tmpl.required
               AND (NOT chk.done OR chk.done_date > l.date_out)
            """,
            [self.started_at],
        )[0][0]
        results.append(("deal left a step with a required check not done", past_gate))
        # Odoo's own message per assigned activity ("... assigned to you"):
        # the engine's activities are told once per transaction instead
        per_activity, told_once = q(
            """
            SELECT count(*) FILTER (WHERE subject LIKE %s),
                   count(*) FILTER (WHERE subject LIKE %s OR subject LIKE %s)
              FROM mail_message
             WHERE message_type = 'user_notification' AND create_date >= %s
            """,
            [
                "%assigned to you",
                "New activities for you%",
                "New activity for you%",
                self.started_at,
            ],
        )[0]
        say(f"assignees told of their new activities: {told_once:,} notifications")
        results.append(("engine activity notified one by one (assigned to you)", per_activity))
        return results

    def server_log_errors(self):
        """(errors, retried): ERROR entries of the server log.

        Serialization failures are not errors: Odoo retries the request that
        hit one, and a cron job that hit one is rolled back and runs again.
        """
        errors, retried = [], 0
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return errors, retried
        for index, line in enumerate(lines):
            if " ERROR " not in line and " CRITICAL " not in line:
                continue
            if "bad query" in line or "could not serialize" in line:
                retried += 1
                continue
            # the entry's traceback runs until the next log line
            entry = []
            for follow in lines[index + 1 : index + 80]:
                if follow[:4].isdigit() and " INFO " in follow[:40] or " ERROR " in follow[:40]:
                    break
                entry.append(follow)
            if any("SerializationFailure" in text for text in entry):
                retried += 1
                continue
            errors.append(line[:300])
        return errors, retried
