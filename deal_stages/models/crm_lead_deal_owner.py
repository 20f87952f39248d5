from odoo import models
from odoo.tools import SQL

# the deal's fields copied onto its history and totals, as (deal field, copy)
OWNER_COLUMNS = (("user_id", "lead_user_id"), ("team_id", "lead_team_id"))


class CrmLeadDealOwner(models.AbstractModel):
    """A deal's owner (salesperson, sales team) copied onto its stage history
    and per-step totals: their record rules and the time-in-step analyses
    filter and group a million rows by it without joining the deals.

    ``crm.lead._write_multi`` (where every change of the owner reaches the
    database: a write, an import, the team recomputed from the salesperson)
    calls ``_deal_sync_owners`` for each batch it writes.
    """

    _name = "crm.lead.deal.owner"
    _description = "Deal: Owner on the History"

    def _deal_owner_changed(self, vals_list):
        """Ids of the deals ``self`` whose owner ``vals_list`` (one per deal) writes."""
        owners = {deal for deal, __ in OWNER_COLUMNS}
        return [
            lead.id
            for lead, vals in zip(self, vals_list, strict=True)
            if not owners.isdisjoint(vals)
        ]

    def _deal_sync_owners(self, lead_ids):
        """Copy the owner of the deals ``lead_ids`` onto their stays and
        totals: one statement for the batch, rows already right untouched."""
        if not lead_ids:
            return

        def update(table):
            copies = SQL(", ").join(SQL.identifier(copy) for __, copy in OWNER_COLUMNS)
            deal = SQL(", ").join(SQL.identifier("deal", field) for field, __ in OWNER_COLUMNS)
            current = SQL(", ").join(SQL.identifier("target", copy) for __, copy in OWNER_COLUMNS)
            return SQL(
                """
                UPDATE %(table)s target SET (%(copies)s) = ROW(%(deal)s)
                  FROM deal
                 WHERE target.lead_id = deal.id AND (%(current)s) IS DISTINCT FROM (%(deal)s)
                """,
                table=SQL.identifier(table),
                copies=copies,
                deal=deal,
                current=current,
            )

        # raw SQL, nothing to flush: the deals' columns were just written
        self.env.cr.execute(
            SQL(
                """
                WITH deal AS (SELECT id, user_id, team_id FROM crm_lead WHERE id = ANY(%(ids)s)),
                stays AS (%(stays)s)
                %(totals)s
                """,
                ids=sorted(lead_ids),
                stays=update("crm_deal_stage_log"),
                totals=update("crm_deal_step_total"),
            )
        )
        fnames = [copy for __, copy in OWNER_COLUMNS]
        for model in ("crm.deal.stage.log", "crm.deal.step.total"):
            self.env[model].invalidate_model(fnames, flush=False)
