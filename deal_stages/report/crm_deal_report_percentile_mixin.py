from odoo import fields, models
from odoo.tools import SQL


class CrmDealReportPercentileMixin(models.AbstractModel):
    """Median and percentiles as pivot/graph measures.

    ``read_group`` only knows sum/avg/min/max/count. A field listed in
    ``_percentile_fields`` is aggregated with PostgreSQL's ``percentile_cont``
    over the source column of every group the web client asks for, whatever
    aggregator it sends: a pivot cell, a row total or the grand total always
    shows the exact median (or 90th percentile) of the rows it covers, under
    any filter. On a single row the value is the row's own value.
    """

    _name = "crm.deal.report.percentile.mixin"
    _description = "Deal Report Percentiles"

    # {field name: (source field name, fraction)}
    _percentile_fields = {}

    def _read_group_select(self, aggregate_spec, query):
        fname = aggregate_spec.split(":", 1)[0]
        if fname in self._percentile_fields:
            source, fraction = self._percentile_fields[fname]
            # check read access on the field like the standard path does
            self._check_field_access(self._fields[fname], "read")
            # percentiles sort their group's values: let the sort of a large
            # history happen in memory (this transaction only)
            self.env.cr.execute("SET LOCAL work_mem = '64MB'")
            return SQL(
                "percentile_cont(%s) WITHIN GROUP (ORDER BY %s)",
                fraction,
                self._field_to_sql(self._table, source, query),
            )
        return super()._read_group_select(aggregate_spec, query)

    def _stay_sql(self):
        """Lateral subquery giving ``date_out`` and ``seconds`` of the stay ``log``
        of the deal ``deal``.

        A stay ends when the deal leaves the stage, or when the deal is closed
        (lost) while standing in it; a stay still running counts up to now,
        as the ORM sees it (frozen in tests), so all rows share one instant.
        """
        now = fields.Datetime.now()
        return SQL(
            """
            SELECT ended.date_out,
                   GREATEST(EXTRACT(EPOCH FROM COALESCE(ended.date_out, %s) - log.date_in),
                            0)::float8 AS seconds
              FROM (SELECT COALESCE(
                           log.date_out,
                           CASE WHEN deal.won_status != 'pending' OR NOT deal.active
                                THEN COALESCE(deal.date_closed, deal.write_date) END
                       ) AS date_out) ended
            """,
            now,
        )

    def _read_group_orderby(self, order, groupby_terms, query):
        """Order many2one groups by their model's order without joining it.

        The standard ordering joins the related model (step, script, user...)
        and adds its order columns to the GROUP BY, which makes PostgreSQL sort
        the whole history on them; ranking the related records in a subquery
        evaluated once keeps the grouping on the id alone.
        """
        if not order:
            return super()._read_group_orderby(order, groupby_terms, query)
        terms = []
        for order_part in order.split(","):
            term, *rest = order_part.split()
            field = self._fields.get(term)
            if (
                term in groupby_terms
                and field
                and field.type == "many2one"
                and field.comodel_name != "crm.lead"
            ):
                # sudo: only the order of the related records is read
                comodel = self.env[field.comodel_name].sudo().with_context(active_test=False)
                ranked = comodel._search([], order=comodel._order).select(
                    SQL.identifier(comodel._table, "id")
                )
                direction = "DESC" if rest and rest[0].upper() == "DESC" else "ASC"
                terms.append(
                    SQL(
                        "array_position(ARRAY(%s), %s) %s NULLS LAST",
                        ranked,
                        groupby_terms[term],
                        SQL(direction),
                    )
                )
            elif sql := super()._read_group_orderby(order_part, groupby_terms, query):
                terms.append(sql)
        return SQL(", ").join(terms)
