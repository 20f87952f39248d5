"""Input of the public methods as an RPC client sends it."""

from odoo.exceptions import UserError


def ensure_one(records):
    """``records``, which must be one record: a clear error instead of Odoo's
    ``ValueError`` ("Expected singleton"), which an RPC client calling a
    button with no id or several ids gets as a server traceback."""
    if len(records) != 1:
        model = records.env["ir.model"]._get(records._name).name
        raise UserError(
            records.env._(
                "This action works on one record of “%(model)s” at a time, not %(count)s.",
                model=model,
                count=len(records),
            )
        )
    return records
