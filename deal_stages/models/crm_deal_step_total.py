from odoo import fields, models
from odoo.tools import SQL

# cr.precommit.data keys: stays created or changed, deals whose stays were deleted
PENDING_STAYS = "deal_stages.step_total.stays"
PENDING_LEADS = "deal_stages.step_total.leads"


class CrmDealStepTotal(models.Model):
    """A deal's stays in a script step, summed up: one row per deal and step.

    The time-in-step per deal and the step funnel read these rows instead of
    grouping the whole stage history on every pivot load (a million stays take
    seconds to group). The rows are derived data: they are recomputed from the
    history of the deals whose stays were created, changed or deleted, in one
    statement when the transaction commits (or before a report reads them in
    the same transaction). A stay still open is kept by its entry date: its
    time counts up to the moment of the query.
    """

    _name = "crm.deal.step.total"
    _description = "Time in Step per Deal (stored totals)"
    _log_access = False
    _rec_name = "lead_id"

    lead_id = fields.Many2one("crm.lead", string="Deal", required=True, ondelete="cascade")
    # a deleted step drops its stays from the analyses (its history rows lose
    # their step): so do its totals
    step_id = fields.Many2one("crm.deal.script.step", required=True, ondelete="cascade")
    script_id = fields.Many2one("crm.deal.script", ondelete="set null")
    company_id = fields.Many2one(
        "res.company", ondelete="set null", help="The company of the deal's last stay."
    )
    # the deal's owner now, as on its stays (crm.lead._deal_sync_owners)
    lead_user_id = fields.Many2one("res.users", string="Current Salesperson", ondelete="set null")
    lead_team_id = fields.Many2one("crm.team", string="Current Sales Team", ondelete="set null")
    stay_count = fields.Integer(string="Stays")
    closed_seconds = fields.Float(
        string="Time of Completed Stays (s)",
        help="Total time of the stays the deal left, in seconds.",
    )
    date_first_in = fields.Datetime(string="First Entered")
    date_last_out = fields.Datetime(
        string="Last Left", help="When the deal last left the step (completed stays)."
    )
    open_date_in = fields.Datetime(
        string="Current Stay Entered", help="Entry date of the stay the deal is in now, if any."
    )

    _lead_step_unique = models.Constraint(
        "UNIQUE (lead_id, step_id)", "A deal has one total per step."
    )
    # the analyses read the totals from this index alone, in step and
    # salesperson order (no sort of the whole table before the exact medians
    # of step x salesperson; script_id for the versions' join, which
    # PostgreSQL drops when unused but still reads; the team for the record
    # rules of team leaders)
    _step_index = models.Index(
        "(step_id, lead_user_id) INCLUDE (lead_id, script_id, company_id, lead_team_id,"
        " stay_count, closed_seconds, open_date_in)"
    )
    # a user's deleted account or team empties these columns (ON DELETE SET NULL)
    _lead_user_index = models.Index("(lead_user_id) WHERE lead_user_id IS NOT NULL")
    _lead_team_index = models.Index("(lead_team_id) WHERE lead_team_id IS NOT NULL")

    def init(self):
        # a database that has stage history but no totals yet (the addon
        # upgraded to this version): build them once
        self.env.cr.execute(
            SQL(
                """
                SELECT EXISTS (SELECT 1 FROM crm_deal_stage_log WHERE step_id IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM %s)
                """,
                SQL.identifier(self._table),
            )
        )
        if self.env.cr.fetchone()[0]:
            self._rebuild()

    def flush_model(self, fnames=None):
        # the deals' new owners reach their totals when the deals are flushed
        # (crm.lead._write_multi): before the totals are read by owner
        if fnames is None or not {"lead_user_id", "lead_team_id"}.isdisjoint(fnames):
            self.env["crm.lead"].flush_model(["user_id", "team_id"])
        return super().flush_model(fnames)

    # ------------------------------------------------------------
    # MAINTENANCE
    # ------------------------------------------------------------

    def _mark_stays(self, stays):
        """Recompute the totals of the deals of ``stays`` before commit.

        No query: the ids are kept for one statement at the end of the
        transaction (or before a report reads the totals).
        """
        if stays:
            self._pending(PENDING_STAYS).update(stays.ids)

    def _mark_leads(self, lead_ids):
        if lead_ids:
            self._pending(PENDING_LEADS).update(lead_ids)

    def _pending(self, key):
        precommit = self.env.cr.precommit
        if PENDING_STAYS not in precommit.data and PENDING_LEADS not in precommit.data:
            precommit.add(self._flush_pending)
        return precommit.data.setdefault(key, set())

    def _flush_pending(self):
        """Recompute the totals of the deals marked in this transaction."""
        data = self.env.cr.precommit.data
        stay_ids = data.pop(PENDING_STAYS, set())
        lead_ids = data.pop(PENDING_LEADS, set())
        if not (stay_ids or lead_ids):
            return
        # the stays' dates, steps and causes, the deals' owners must be in the
        # database first
        self.env["crm.lead"].flush_model(["user_id", "team_id"])
        self.env["crm.deal.stage.log"].flush_model(
            ["lead_id", "script_id", "step_id", "company_id", "date_in", "date_out", "cause"]
        )
        leads = SQL(
            "SELECT lead_id FROM crm_deal_stage_log WHERE id = ANY(%s::int[])"
            " UNION SELECT unnest(%s::int[])",
            sorted(stay_ids),
            sorted(lead_ids),
        )
        self._recompute(leads)

    def _rebuild(self):
        """Recompute every total from the whole stage history.

        For histories written by SQL, bypassing the ORM (imports, benches).
        """
        self.env["crm.lead"].flush_model(["user_id", "team_id"])
        self.env["crm.deal.stage.log"].flush_model()
        self.env.cr.execute(
            SQL(
                "DELETE FROM %(table)s; INSERT INTO %(table)s (%(columns)s) %(fresh)s",
                table=SQL.identifier(self._table),
                columns=self._columns_sql(),
                fresh=self._fresh_sql(SQL("TRUE")),
            )
        )
        self.invalidate_model()

    def _columns_sql(self):
        return SQL(", ").join(SQL.identifier(fname) for fname in self._TOTAL_COLUMNS)

    _TOTAL_COLUMNS = (
        "lead_id",
        "step_id",
        "script_id",
        "company_id",
        "lead_user_id",
        "lead_team_id",
        "stay_count",
        "closed_seconds",
        "date_first_in",
        "date_last_out",
        "open_date_in",
    )

    def _fresh_sql(self, log_where):
        """The totals of the deals matching ``log_where`` (on ``log``), from
        their history: columns in the order of ``_TOTAL_COLUMNS``."""
        return SQL(
            """
            SELECT log.lead_id,
                   log.step_id,
                   MIN(log.script_id),
                   (ARRAY_AGG(log.company_id ORDER BY log.date_in DESC, log.id DESC))[1],
                   lead.user_id,
                   lead.team_id,
                   COUNT(*),
                   COALESCE(SUM(GREATEST(EXTRACT(EPOCH FROM log.date_out - log.date_in), 0))
                            FILTER (WHERE log.date_out IS NOT NULL), 0)::float8,
                   MIN(log.date_in),
                   MAX(log.date_out),
                   MAX(log.date_in) FILTER (WHERE log.date_out IS NULL)
              FROM crm_deal_stage_log log
              JOIN crm_lead lead ON lead.id = log.lead_id
             WHERE log.step_id IS NOT NULL AND log.cause != 'lost' AND %s
             GROUP BY log.lead_id, log.step_id, lead.user_id, lead.team_id
            """,
            log_where,
        )

    def _recompute(self, leads):
        """Bring the totals of the deals ``leads`` (an SQL subquery) up to date.

        One statement: the totals are derived from the history alone, so
        they stay exact whatever changed (re-entries, a stay moved or
        deleted); rows whose values did not change are not rewritten.
        """
        columns = self._columns_sql()
        updated = [fname for fname in self._TOTAL_COLUMNS if fname not in ("lead_id", "step_id")]
        self.env.cr.execute(
            SQL(
                """
                WITH fresh (%(columns)s) AS (%(fresh)s),
                gone AS (
                    DELETE FROM %(table)s total
                     WHERE total.lead_id IN (%(leads)s)
                       AND NOT EXISTS (
                           SELECT 1 FROM fresh
                            WHERE fresh.lead_id = total.lead_id AND fresh.step_id = total.step_id
                       )
                )
                INSERT INTO %(table)s AS total (%(columns)s)
                SELECT %(columns)s FROM fresh
                ON CONFLICT (lead_id, step_id) DO UPDATE
                   SET (%(updated)s) = ROW(%(excluded)s)
                 WHERE (%(current)s) IS DISTINCT FROM (%(excluded)s)
                """,
                table=SQL.identifier(self._table),
                columns=columns,
                fresh=self._fresh_sql(SQL("log.lead_id IN (%s)", leads)),
                leads=leads,
                updated=SQL(", ").join(SQL.identifier(fname) for fname in updated),
                excluded=SQL(", ").join(SQL.identifier("excluded", fname) for fname in updated),
                current=SQL(", ").join(SQL.identifier("total", fname) for fname in updated),
            )
        )
        self.invalidate_model()
