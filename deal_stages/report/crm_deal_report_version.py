from odoo import fields, models
from odoo.tools import SQL


class CrmDealReportVersionMixin(models.AbstractModel):
    """The process-version dimensions of a deal analysis: the process (every
    version together), the version and the step key (a step across the
    versions of its process).

    An analysis inheriting it selects ``process_id``, ``version`` and
    ``step_key``, e.g. with ``_version_dimensions_sql``.
    """

    _name = "crm.deal.report.version.mixin"
    _description = "Deal Report: Process Versions"

    process_id = fields.Many2one(
        "crm.deal.script",
        readonly=True,
        help="Every version of the process together.",
    )
    version = fields.Integer(readonly=True, aggregator=False)
    step_key = fields.Char(
        readonly=True,
        help="The step across the versions of its process: group by it to compare "
        "a step of version 3 with the same step of version 2.",
    )

    def _version_dimensions_sql(self, script, step):
        """The three columns, from the aliases of the joined script and step
        tables (``SQL`` identifiers)."""
        return SQL(
            "%(script)s.process_id, %(script)s.version, %(step)s.step_key",
            script=script,
            step=step,
        )
