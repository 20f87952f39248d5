from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL
from odoo.tools.misc import clean_context

from ..tools import DealMigration, DealOutcome, ranked_group_orderby
from .mail_activity_deal_notify import deal_notify_held

CAUSES = [
    ("move", "Moved by a user"),
    ("auto", "Moved automatically"),
    ("change", "Order change"),
    ("lost", "Lost"),
    ("restore", "Restored"),
    ("override", "Supervisor override"),
    ("migrate", "Migrated to a new version"),
]


class CrmDealStageLog(models.Model):
    """One stay of a deal in a stage: the stage history is data, not chatter."""

    _name = "crm.deal.stage.log"
    # lead_team_leader_id: the team leaders' record rules
    _inherit = ["crm.deal.team.leader.mixin"]
    _description = "Deal Stage History"
    _order = "date_in desc, id desc"
    _rec_name = "stage_id"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, index=True, ondelete="cascade"
    )
    script_id = fields.Many2one("crm.deal.script", index=True, ondelete="set null")
    step_id = fields.Many2one("crm.deal.script.step", index=True, ondelete="set null")
    stage_id = fields.Many2one("crm.stage", index=True, ondelete="set null")
    from_stage_id = fields.Many2one("crm.stage", ondelete="set null")
    from_step_id = fields.Many2one("crm.deal.script.step", ondelete="set null")
    user_id = fields.Many2one(
        "res.users", string="Moved By", default=lambda self: self.env.user, ondelete="set null"
    )
    salesperson_id = fields.Many2one("res.users", index=True, ondelete="set null")
    team_id = fields.Many2one("crm.team", string="Sales Team", index=True, ondelete="set null")
    # the deal's owner now (salesperson_id and team_id are those of the stay):
    # kept equal to the deal's by the engine (crm.lead._deal_sync_owners), so
    # that the history's record rules and analyses need not join the deals
    lead_user_id = fields.Many2one(
        "res.users",
        string="Current Salesperson",
        readonly=True,
        ondelete="set null",
        help="The deal's salesperson now: who sees this history.",
    )
    lead_team_id = fields.Many2one(
        "crm.team",
        string="Current Sales Team",
        readonly=True,
        ondelete="set null",
        help="The deal's sales team now: whose team leader sees this history.",
    )
    company_id = fields.Many2one("res.company", index=True)
    date_in = fields.Datetime(string="Entered", required=True, default=fields.Datetime.now)
    date_out = fields.Datetime(string="Left")
    # precomputed: a new stay is inserted with its duration, not updated after
    duration_hours = fields.Float(
        string="Time in Step (hours)",
        compute="_compute_duration_hours",
        store=True,
        precompute=True,
        aggregator="avg",
    )
    cause = fields.Selection(CAUSES, required=True, default="move")
    note = fields.Text()
    sla_breached = fields.Boolean(string="Deadline Breached")
    change_id = fields.Many2one(
        "crm.deal.order.change",
        string="Order Change",
        index="btree_not_null",
        ondelete="set null",
        help="The order change that sent the deal back to this step.",
    )
    entry_done = fields.Boolean(
        string="Entry Automation Done",
        help="Technical: the script's entry automation has processed this stay.",
    )

    # one open stay per deal, guaranteed by the database: two transactions
    # moving the same deal at once can never both open a stay (the loser
    # fails and Odoo retries it, or its user gets this message)
    _lead_open_index = models.UniqueIndex(
        "(lead_id) WHERE date_out IS NULL",
        "This deal was moved by someone else at the same time: reload it and try again.",
    )
    _entry_pending_index = models.Index("(lead_id) WHERE entry_done IS NOT TRUE")
    _lead_date_index = models.Index("(lead_id, date_in)")
    # time-in-step analysis (crm.deal.step.stay.report): its pivot reads the
    # stays from this index alone (every column its view and its record
    # rules read, script_id for the versions' join), already in step and
    # salesperson order, so the rows, cells and totals of step x salesperson
    # need no sort of the whole history before their exact medians, and a
    # team leader's pivot filters the stays of their deals in step order
    _step_duration_index = models.Index(
        "(step_id, salesperson_id, duration_hours)"
        " INCLUDE (lead_id, script_id, company_id, team_id, lead_user_id, lead_team_id,"
        " date_in, date_out)"
        " WHERE step_id IS NOT NULL AND cause != 'lost'"
    )
    # a user's deleted account or team empties these columns (ON DELETE SET NULL)
    _lead_user_index = models.Index("(lead_user_id) WHERE lead_user_id IS NOT NULL")
    _lead_team_index = models.Index("(lead_team_id) WHERE lead_team_id IS NOT NULL")

    # fields the per-deal totals (crm.deal.step.total) are computed from
    _TOTAL_FIELDS = frozenset(
        ("lead_id", "script_id", "step_id", "company_id", "date_in", "date_out", "cause")
    )

    @api.model_create_multi
    def create(self, vals_list):
        # written by the engine only: the caller's default_* context keys must
        # not fill what the engine leaves out (entry_done, date_out, ...)
        self = self.with_env(self.env(context=clean_context(self.env.context)))
        self._verify_owner_fields(vals_list)
        # the deal's owner, copied from the deal (already in the cache of the
        # engine that opens the stays: no query)
        owners = self._owner_values({vals.get("lead_id") for vals in vals_list} - {False, None})
        vals_list = [dict(vals, **owners.get(vals.get("lead_id"), {})) for vals in vals_list]
        stays = super().create(vals_list)
        self.env["crm.deal.step.total"]._mark_stays(stays)
        return stays

    def write(self, vals):
        self._verify_owner_fields([vals])
        if "lead_id" in vals:
            # the deals the stays leave need their totals recomputed too
            self.env["crm.deal.step.total"]._mark_leads(self.lead_id.ids)
            # and the stays follow the owner of their new deal
            lead_id = vals["lead_id"]
            vals = dict(vals, **self._owner_values([lead_id] if lead_id else []).get(lead_id, {}))
        result = super().write(vals)
        if not self._TOTAL_FIELDS.isdisjoint(vals):
            self.env["crm.deal.step.total"]._mark_stays(self)
        return result

    def unlink(self):
        self.env["crm.deal.step.total"]._mark_leads(self.lead_id.ids)
        return super().unlink()

    # the deal's owner: written from the deal only, never by a client (they
    # decide who sees the history)
    _OWNER_FIELDS = frozenset(("lead_user_id", "lead_team_id"))

    def _verify_owner_fields(self, vals_list):
        if not self.env.su and any(self._OWNER_FIELDS.intersection(vals) for vals in vals_list):
            raise AccessError(
                self.env._(
                    "The current salesperson and sales team of a stage history row are "
                    "those of its deal: they cannot be edited."
                )
            )

    @api.model
    def _owner_values(self, lead_ids):
        """{deal id: the owner fields' values of its stays} (one read of the
        deals at most, none when they are in the cache)"""
        # the deal's owner, whatever the caller may read of it
        leads = self.env["crm.lead"].sudo().browse(lead_ids)
        return {
            lead.id: {"lead_user_id": lead.user_id.id, "lead_team_id": lead.team_id.id}
            for lead in leads
        }

    def flush_model(self, fnames=None):
        # the deals' new owners reach the history when the deals are flushed
        # (crm.lead._write_multi): before the history is read by owner
        if fnames is None or not self._OWNER_FIELDS.isdisjoint(fnames):
            self.env["crm.lead"].flush_model(["user_id", "team_id"])
        return super().flush_model(fnames)

    @api.depends("date_in", "date_out")
    def _compute_duration_hours(self):
        for log in self:
            if log.date_in and log.date_out:
                log.duration_hours = (log.date_out - log.date_in).total_seconds() / 3600
            else:
                log.duration_hours = 0.0

    def _read_group_orderby(self, order, groupby_terms, query):
        # the history's pivot by step: no sort of every stay on the step's
        # and script's order columns
        return ranked_group_orderby(self, order, groupby_terms, query, super()._read_group_orderby)

    # ------------------------------------------------------------
    # ENGINE
    # ------------------------------------------------------------

    @api.model
    def _step_entry_dates(self, lead_ids):
        """{deal id: when it entered its current step}, in one query.

        The current stay's entry, or, for a stay a migration to a new version
        opened, the entry of the stay it continues: the time already spent in
        the step counts, as for its deadline (``DealMigration``).
        """
        if not lead_ids:
            return {}
        self.flush_model(["lead_id", "date_in", "date_out", "cause"])
        rows = self.env.execute_query(
            SQL(
                """
                WITH RECURSIVE stay AS (
                    SELECT id, lead_id, date_in, cause FROM crm_deal_stage_log
                     WHERE lead_id = ANY(%(ids)s) AND date_out IS NULL
                     UNION ALL
                    SELECT prev.id, prev.lead_id, prev.date_in, prev.cause
                      FROM stay
                      JOIN crm_deal_stage_log prev
                        ON prev.lead_id = stay.lead_id
                       AND prev.date_out = stay.date_in
                       AND prev.id < stay.id
                     WHERE stay.cause = 'migrate'
                )
                SELECT lead_id, MIN(date_in) FROM stay GROUP BY lead_id
                """,
                ids=list(lead_ids),
            )
        )
        return dict(rows)

    @api.model
    def _close_open_stays(self, lead_ids, date_out):
        """Close the open stays of the deals ``lead_ids`` at ``date_out``.

        One statement: ``date_out`` and the duration (as
        ``_compute_duration_hours`` computes it) are written where the stays
        are found, before the deals' next stays are inserted (the database
        allows one open stay per deal).

        :return: the stays closed
        """
        self.flush_model(["lead_id", "date_in", "date_out", "duration_hours"])
        rows = self.env.execute_query(
            SQL(
                """
                UPDATE crm_deal_stage_log
                   SET date_out = %(date_out)s,
                       duration_hours = EXTRACT(EPOCH FROM %(date_out)s - date_in)::float8 / 3600,
                       write_uid = %(uid)s,
                       write_date = %(now)s
                 WHERE lead_id = ANY(%(lead_ids)s) AND date_out IS NULL
             RETURNING id
                """,
                date_out=date_out,
                uid=self.env.uid,
                now=self.env.cr.now(),
                lead_ids=list(lead_ids),
            )
        )
        stays = self.browse(row[0] for row in rows)
        stays.invalidate_recordset(
            ["date_out", "duration_hours", "write_uid", "write_date"], flush=False
        )
        self.env["crm.deal.step.total"]._mark_stays(stays)
        return stays

    @api.model
    def _claim_entries(self, lead_ids, also=None):
        """The stays of the deals ``lead_ids`` whose entry is not processed
        yet, marked processed, oldest first: one statement.

        Marked before the work is done: an entry is never applied twice, not
        even by a move made while the entry work runs (a server action); a
        failure of the work rolls the mark back with it.

        :param also: an SQL query of 4 columns run in the same statement
            (the deals' script activities the entry work reads next)
        :return: the stays, or (the stays, the rows of ``also``) if given
        """
        self.flush_model(["lead_id", "date_in", "entry_done"])
        rows = self.env.execute_query(
            SQL(
                """
                WITH claimed AS (
                    UPDATE crm_deal_stage_log
                       SET entry_done = TRUE, write_uid = %(uid)s, write_date = %(now)s
                     WHERE lead_id = ANY(%(lead_ids)s) AND entry_done IS NOT TRUE
                 RETURNING id, date_in
                )
                SELECT TRUE, id, NULL::int, NULL::int, NULL::int, date_in FROM claimed
                 UNION ALL
                SELECT FALSE, also.*, NULL FROM (%(also)s) also
                """,
                uid=self.env.uid,
                now=self.env.cr.now(),
                lead_ids=list(lead_ids),
                also=also or SQL("SELECT NULL::int, NULL::int, NULL::int, NULL::int WHERE FALSE"),
            )
        )
        claimed = sorted((row[5], row[1]) for row in rows if row[0])  # by date_in, id
        stays = self.browse(stay_id for __, stay_id in claimed)
        stays.invalidate_recordset(["entry_done", "write_uid", "write_date"], flush=False)
        if also is None:
            return stays
        return stays, [row[1:5] for row in rows if not row[0]]

    def _process_entries(self, env, activity_rows=None):
        """Apply what the steps of these stays do on entry, in batch.

        Only stays the deal is still in get the automation: a step's entry
        work is for deals that stand in it. The stays come marked done
        (``_claim_entries``), so the engine never applies an entry twice.

        :param env: the environment the work on the deals is done in
        :param activity_rows: the deals' script activities, read with the
            claim (see ``crm.lead._deal_cancel_left_activities``)
        """
        current = self.filtered(lambda log: not log.date_out and log.step_id)
        # a deal gone to a stage outside its steps (a shared stage, a
        # supervisor's override): the activities of the step it left go too
        outside = self.filtered(
            lambda log: not log.date_out and not log.step_id and log.script_id
        ).lead_id
        if outside:
            outside.with_env(env)._deal_cancel_left_activities(rows=activity_rows)
        outcome = DealOutcome()
        if current:
            # the engine's own rows: the caller's default_* keys stay out
            env = env(context=clean_context(env.context))
            leads = current.lead_id.with_env(env)
            step_by_lead = {log.lead_id.id: log.step_id for log in current}
            leads._deal_prefetch_partners(
                with_companies=bool(leads._deal_handoff_targets(step_by_lead))
            )
            activities = leads._deal_cancel_left_activities(rows=activity_rows)
            leads._deal_schedule_activities(
                step_by_lead, "enter", outcome, open_activities=activities
            )
            # a restored deal comes back to its step: its customer was told
            # already; a migrated one changes version, not step, for its customer
            leads._deal_send_step_messages(
                {
                    log.lead_id.id: log.step_id
                    for log in current
                    if log.cause not in ("restore", "migrate")
                },
                outcome,
            )
            env["crm.deal.check"]._create_for_deals(leads, step_by_lead, outcome)
            leads._deal_handoff_create(step_by_lead, outcome)
            current.with_env(env)._run_step_server_actions(outcome)
            # a migration to a new version: deadlines from the entry in the
            # old step, and its own note (one per deal) says what was done
            migration = env.context.get("deal_migration")
            migrated = (
                current.filtered(
                    lambda log: log.cause == "migrate" and log.lead_id.id in migration.titles
                )
                if isinstance(migration, DealMigration)
                else current.browse()
            )
            starts = {log.lead_id.id: migration.starts.get(log.lead_id.id) for log in migrated}
            leads._deal_sla_start(current, starts=starts)
            if migrated:
                outcome.post_titled(leads.browse(migrated.lead_id.ids), migration.titles)
            outcome.post(leads - migrated.lead_id, current - migrated)
            leads._deal_prepare_tracking_messages()

    def _run_step_server_actions(self, outcome=None):
        # which steps have actions: the scripts' structure (cached), no query
        config = self.env["crm.deal.script"]._deal_config()
        for step, stays in self.grouped("step_id").items():
            step_config = config.steps.get(step.id)
            if not (step_config and step_config.server_action_ids):
                continue
            # configured by administrators, run as whoever moved the deal
            # (never as superuser): Odoo checks the mover's rights
            actions = self.env["ir.actions.server"].browse(step_config.server_action_ids)
            actions = actions.exists()
            leads = stays.lead_id
            for action in actions:
                # one failing action is reported; the move and the others go
                # on. Its savepoint tells nobody of the activities of the move
                try:
                    with deal_notify_held(self.env), self.env.cr.savepoint():
                        action.with_context(
                            active_model="crm.lead", active_ids=leads.ids, active_id=leads[:1].id
                        ).run()
                except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                    raise
                except Exception as error:  # noqa: BLE001 - reported on the deals
                    leads._deal_side_effect_failed(
                        self.env._("server action “%(action)s”", action=action.sudo().name),
                        error,
                        outcome,
                    )
