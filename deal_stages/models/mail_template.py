from odoo import models, tools
from odoo.tools import SQL


class MailTemplate(models.Model):
    _name = "mail.template"
    # steps refer to their message in the scripts' cached structure
    # (crm.deal.script._deal_config); _deal_has_documents caches the documents
    _inherit = ["mail.template", "crm.deal.config.mixin"]
    _deal_config_fields = frozenset({"attachment_ids", "report_template_ids"})

    @tools.ormcache("self.id")
    def _deal_has_documents(self):
        """(has attachments, has reports): what the deal engine renders with
        the template, cached as it sends step messages on every move.

        Cleared when they change; an attachment or report deleted since only
        costs a look that finds nothing.
        """
        documents, reports = (
            self._fields[name] for name in ("attachment_ids", "report_template_ids")
        )
        self.flush_recordset(["attachment_ids", "report_template_ids"])
        return tuple(
            self.env.execute_query(
                SQL(
                    "SELECT EXISTS(SELECT FROM %s WHERE %s = %s),"
                    " EXISTS(SELECT FROM %s WHERE %s = %s)",
                    SQL.identifier(documents.relation),
                    SQL.identifier(documents.column1),
                    self.id,
                    SQL.identifier(reports.relation),
                    SQL.identifier(reports.column1),
                    self.id,
                )
            )[0]
        )
