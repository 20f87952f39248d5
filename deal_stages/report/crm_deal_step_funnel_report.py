from odoo import fields, models
from odoo.tools import SQL


class CrmDealStepFunnelReport(models.Model):
    """Step funnel: one row per deal and script step the deal reached.

    Across the versions of a process a step is its key: a deal migrated to a
    new version while in a step reached that step once, and counts in the
    version it went on in (its row in the older version is left out). A deal
    migrated from a step to a step of another key left it: it moved on from
    it if it went past the step's key in the new version (or the new step's
    key comes after it in the old one, or the two versions have neither key
    in common), else it went back.
    """

    _name = "crm.deal.step.funnel.report"
    _inherit = ["crm.deal.report.mixin", "crm.deal.report.version.mixin"]
    _description = "Deal Step Funnel"
    _auto = False
    _order = "date_reached desc, id desc"
    _depends = {
        "crm.deal.stage.log": ["lead_id", "step_id", "date_in"],
        "crm.deal.script.step": ["script_id", "sequence", "step_key"],
        "crm.deal.script": ["process_id", "version"],
        "crm.lead": [
            "user_id",
            "team_id",
            "company_id",
            "won_status",
            "active",
            "deal_step_id",
        ],
    }

    step_id = fields.Many2one("crm.deal.script.step", readonly=True)
    date_reached = fields.Datetime(
        string="Reached On", readonly=True, help="When the deal first entered the step."
    )
    reached_count = fields.Integer(
        string="Reached",
        readonly=True,
        aggregator="sum",
        help="Deals that entered the step (each deal once, re-entries aside).",
    )
    moved_on_count = fields.Integer(
        string="Moved On",
        readonly=True,
        aggregator="sum",
        help="Deals that went on from the step: they reached a later step of the "
        "script (or, migrated to a new version, went past the step there), or were won.",
    )
    lost_count = fields.Integer(
        string="Lost Here",
        readonly=True,
        aggregator="sum",
        help="Deals lost while standing in the step.",
    )
    current_count = fields.Integer(
        string="In Step Now",
        readonly=True,
        aggregator="sum",
        help="Open deals that stand in the step now.",
    )
    conversion_rate = fields.Float(
        string="Conversion (%)",
        readonly=True,
        aggregator="avg",
        help="Share of the deals that reached the step and moved on from it: the "
        "conversion from this step to the next ones.",
    )
    loss_rate = fields.Float(
        string="Loss Rate (%)",
        readonly=True,
        aggregator="avg",
        help="Share of the deals that reached the step and were lost in it.",
    )

    def _report_prepare(self):
        # the deals reached their steps as crm.deal.step.total sums them up:
        # those of the deals moved in this transaction first
        self.env["crm.deal.step.total"]._flush_pending()
        return super()._report_prepare()

    def _funnel_positions(self):
        """The steps each deal reached, placed in their script (``positioned``)
        and in the version the deal was migrated to from there, if any
        (``next_version``): the CTEs the funnel's rows are read from."""
        return SQL(
            """
            WITH step_position AS (
                SELECT step.id,
                       step.script_id,
                       script.process_id,
                       script.version,
                       COALESCE(step.step_key, step.id::text) AS step_key,
                       ROW_NUMBER() OVER (
                           PARTITION BY step.script_id ORDER BY step.sequence, step.id
                       ) AS position
                  FROM crm_deal_script_step step
                  JOIN crm_deal_script script ON script.id = step.script_id
            ),
            reached AS (
                SELECT total.id,
                       total.lead_id,
                       total.step_id,
                       total.date_first_in AS date_reached
                  FROM crm_deal_step_total total
            ),
            positioned AS (
                SELECT reached.*,
                       step_position.script_id,
                       step_position.process_id,
                       step_position.version,
                       step_position.step_key,
                       step_position.position,
                       MAX(step_position.position) OVER (
                           PARTITION BY reached.lead_id, step_position.script_id
                       ) AS furthest,
                       -- the same step of a later version (a migrated deal): that row counts
                       ROW_NUMBER() OVER (
                           PARTITION BY reached.lead_id, step_position.process_id,
                                        step_position.step_key
                           ORDER BY step_position.version DESC
                       ) AS latest
                  FROM reached
                  JOIN step_position ON step_position.id = reached.step_id
            ),
            -- per deal and version of its process: the furthest step reached
            deal_version AS (
                SELECT DISTINCT ON (lead_id, process_id, version)
                       lead_id, process_id, version, script_id, furthest, step_key
                  FROM positioned
                 ORDER BY lead_id, process_id, version, position DESC
            ),
            -- ... and the version the deal was migrated to from it (if any)
            next_version AS (
                SELECT lead_id, process_id, version,
                       LEAD(script_id) OVER by_version AS script_id,
                       LEAD(furthest) OVER by_version AS furthest,
                       LEAD(step_key) OVER by_version AS furthest_key
                  FROM deal_version
                WINDOW by_version AS (PARTITION BY lead_id, process_id ORDER BY version)
            )
            """
        )

    @property
    def _table_query(self):
        # a step reached is a per-deal total of its stays (crm.deal.step.total,
        # one row per deal and step, kept as the history is written);
        # "moved on": the deal reached a step further in its script than this
        # one (its furthest position, by window function: no per-row lookup)
        return SQL(
            """
            %s
            SELECT positioned.id,
                   positioned.lead_id,
                   positioned.script_id,
                   positioned.step_id,
                   positioned.process_id,
                   positioned.version,
                   positioned.step_key,
                   deal.user_id AS salesperson_id,
                   deal.team_id,
                   deal.company_id,
                   positioned.date_reached,
                   1 AS reached_count,
                   state.moved_on::int AS moved_on_count,
                   state.lost::int AS lost_count,
                   state.current::int AS current_count,
                   CASE WHEN state.moved_on THEN 100.0 ELSE 0.0 END AS conversion_rate,
                   CASE WHEN state.lost THEN 100.0 ELSE 0.0 END AS loss_rate
              FROM positioned
              JOIN crm_lead deal ON deal.id = positioned.lead_id
              JOIN next_version
                ON next_version.lead_id = positioned.lead_id
               AND next_version.process_id = positioned.process_id
               AND next_version.version = positioned.version
              LEFT JOIN step_position same_in_next
                ON same_in_next.script_id = next_version.script_id
               AND same_in_next.step_key = positioned.step_key
              LEFT JOIN step_position furthest_here
                ON furthest_here.script_id = positioned.script_id
               AND furthest_here.step_key = next_version.furthest_key
             CROSS JOIN LATERAL (
                   SELECT deal.won_status = 'won'
                              OR positioned.furthest > positioned.position
                              -- migrated from the step (another key than its
                              -- own): moved on if the deal went past it in the
                              -- new version, or went to a step after it here;
                              -- no common step to compare with: it left it
                              OR (next_version.script_id IS NOT NULL AND CASE
                                  WHEN same_in_next.id IS NOT NULL
                                      THEN next_version.furthest > same_in_next.position
                                  WHEN furthest_here.id IS NOT NULL
                                      THEN furthest_here.position > positioned.position
                                  ELSE TRUE
                              END) AS moved_on,
                          deal.won_status = 'lost'
                              AND deal.deal_step_id = positioned.step_id AS lost,
                          deal.won_status = 'pending' AND deal.active
                              AND deal.deal_step_id = positioned.step_id AS current
             ) state
             WHERE positioned.latest = 1
            """,
            self._funnel_positions(),
        )
