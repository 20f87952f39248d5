from odoo.tools import SQL


def ranked_group_orderby(model, order, groupby_terms, query, super_orderby):
    """Order many2one groups by their model's order without joining it.

    The standard ordering joins the related model (step, script, user...)
    and adds its order columns to the GROUP BY, which makes PostgreSQL sort
    the whole history on them; ranking the related records in a subquery
    evaluated once keeps the grouping on the id alone.

    :param super_orderby: the model's standard ``_read_group_orderby``
    """
    if not order:
        return super_orderby(order, groupby_terms, query)
    terms = []
    for order_part in order.split(","):
        term, *rest = order_part.split()
        field = model._fields.get(term)
        if (
            term in groupby_terms
            and field
            and field.type == "many2one"
            and field.comodel_name != "crm.lead"
        ):
            # sudo: only the order of the related records is read
            comodel = model.env[field.comodel_name].sudo().with_context(active_test=False)
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
        elif sql := super_orderby(order_part, groupby_terms, query):
            terms.append(sql)
    return SQL(", ").join(terms)
