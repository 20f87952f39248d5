from odoo import fields, models
from odoo.tools import SQL

from ..tools import ranked_group_orderby

# {measure: (source field, fraction)} of the time-in-step analyses
TIME_PERCENTILES = {
    "median_hours": ("hours", 0.5),
    "p90_hours": ("hours", 0.9),
    "median_days": ("days", 0.5),
    "p90_days": ("days", 0.9),
}


class CrmDealReportMixin(models.AbstractModel):
    """What every deal analysis shares: its dimensions, median and percentile
    measures, group order and query settings.

    Each analysis is a SQL view (``_auto = False``, ``_table_query``) that
    selects the dimensions below under these names.

    Percentiles: ``read_group`` only knows sum/avg/min/max/count. A field listed in
    ``_percentile_fields`` is aggregated with PostgreSQL's ``percentile_cont``
    over the source column of every group the web client asks for, whatever
    aggregator it sends: a pivot cell, a row total or the grand total always
    shows the exact median (or 90th percentile) of the rows it covers, under
    any filter. On a single row the value is the row's own value.
    """

    _name = "crm.deal.report.mixin"
    _description = "Deal Report"
    _rec_name = "lead_id"

    # {field name: (source field name, fraction)}
    _percentile_fields = {}

    lead_id = fields.Many2one("crm.lead", string="Deal", readonly=True)
    script_id = fields.Many2one("crm.deal.script", readonly=True)
    salesperson_id = fields.Many2one("res.users", readonly=True, help="The deal's salesperson.")
    team_id = fields.Many2one(
        "crm.team", string="Sales Team", readonly=True, help="The deal's sales team."
    )
    company_id = fields.Many2one("res.company", readonly=True)

    def _read_group_select(self, aggregate_spec, query):
        fname = aggregate_spec.split(":", 1)[0]
        if fname in self._percentile_fields:
            source, fraction = self._percentile_fields[fname]
            # check read access on the field like the standard path does
            self._check_field_access(self._fields[fname], "read")
            return SQL(
                "percentile_cont(%s) WITHIN GROUP (ORDER BY %s)",
                fraction,
                self._field_to_sql(self._table, source, query),
            )
        return super()._read_group_select(aggregate_spec, query)

    def _search(self, domain, *args, **kwargs):
        # every read of an analysis goes through here (pivot, graph, list)
        self._report_prepare()
        return super()._search(domain, *args, **kwargs)

    def _report_prepare(self):
        """Settings for this transaction's analysis queries.

        Percentiles sort their groups' values: the sort of a large history
        is done in memory. No JIT compilation: over a million rows of simple
        expressions, compiling costs PostgreSQL more than it saves. Analyses
        without percentiles keep the defaults (and save the query).
        """
        if self._percentile_fields:
            self.env.cr.execute("SET LOCAL work_mem = '128MB'; SET LOCAL jit = off")
        return True

    def _time_measures_sql(self, seconds):
        """The time measures of a time-in-step analysis from a duration in
        seconds: average, median and 90th percentile, in hours and days."""
        return SQL(
            """
            (%(seconds)s) / 3600 AS hours,
            (%(seconds)s) / 3600 AS median_hours,
            (%(seconds)s) / 3600 AS p90_hours,
            (%(seconds)s) / 86400 AS days,
            (%(seconds)s) / 86400 AS median_days,
            (%(seconds)s) / 86400 AS p90_days
            """,
            seconds=seconds,
        )

    def _company_currency_sql(self):
        """``currency_id`` column of the deal's company (joined as ``company``),
        the current company's currency for a deal without company."""
        return SQL(
            "COALESCE(company.currency_id, %s) AS currency_id", self.env.company.currency_id.id
        )

    def _closed_stays_sql(self):
        """Scalar subquery: {deal id: closing date} of the closed deals that
        still have an open stay in a step, as one ``jsonb`` object.

        A stay ends when the deal leaves the stage, or when the deal is closed
        (won, lost, archived) while standing in it. The map is built once per
        query, so the history is read without a lookup of its deal per row.
        Any open stay qualifies (the views look up open stays in a step
        only): the test is then read from the index of open stays alone.
        """
        return SQL(
            """
            SELECT jsonb_object_agg(deal.id, COALESCE(deal.date_closed, deal.write_date))
              FROM crm_lead deal
             WHERE (deal.won_status != 'pending' OR NOT deal.active)
               AND EXISTS (SELECT 1
                             FROM crm_deal_stage_log running
                            WHERE running.lead_id = deal.id AND running.date_out IS NULL)
            """
        )

    def _read_group_orderby(self, order, groupby_terms, query):
        return ranked_group_orderby(self, order, groupby_terms, query, super()._read_group_orderby)
