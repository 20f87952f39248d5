"""Deal feature: the auto-advance (a step's condition met moves the deal on)."""

import logging

from odoo import models
from odoo.fields import Domain

from ..tools import DEAL_NESTED_WRITE

_logger = logging.getLogger(__name__)


class CrmLeadDealAutoAdvance(models.AbstractModel):
    """The engine's auto-advance. ``crm.lead``'s ``create``/``write`` and a
    ticked check call ``_deal_auto_advance_written`` once everything is
    written; a done activity and the bridges' documents call it in a savepoint
    (``_deal_auto_advance_safely``, crm_lead_deal_security.py), an
    acknowledged hand-off calls ``_deal_auto_advance``."""

    _name = "crm.lead.deal.auto.advance"
    _description = "Deal: Auto-Advance"

    def _deal_auto_advance_written(self):
        """Re-evaluate the auto-advance of deals just written, created or
        completed (a check ticked, an activity done).

        Free when no step has a condition (a cached answer, no query); skipped
        inside another write of deals (that write re-evaluates at its end)
        and inside the auto-advance's own moves (it chains them itself).
        """
        if (
            not self
            or self.env.context.get("deal_nested_write") is DEAL_NESTED_WRITE
            or self._deal_current_move().cause == "auto"
            or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids()
        ):
            return self.browse()
        return self._deal_auto_advance()

    def _deal_auto_advance(self):
        """Move on the deals whose step's auto-advance condition holds.

        Batch: per step, one search selects its deals matching the condition,
        one gate check keeps those whose requirements are met (the others
        stay, without error: they are evaluated again at their next write or
        document event), one write moves them to the next step (``cause =
        auto``, the condition named in the note). Deals that enter a step
        whose condition holds too move on again, at most as many times as
        their script has steps. A deal never leaves the last step by itself
        (winning is the salesperson's decision); lost and won deals stay.

        Bridges (sale, account, stock) call it on the deals of a document
        that changed; the write of a deal calls it too.

        :return: the deals moved
        """
        Step = self.env["crm.deal.script.step"]
        auto_step_ids = Step._deal_auto_advance_step_ids()
        moved_all = self.browse()
        if not (self and auto_step_ids):
            return moved_all
        deals = self.filtered(lambda lead: lead.deal_step_id.id in auto_step_ids)
        rounds = max((len(script.step_ids) for script in deals.deal_script_id), default=0)
        for __ in range(rounds):
            deals = deals.filtered(
                lambda lead: (
                    lead.deal_step_id.id in auto_step_ids
                    and lead.active
                    and lead.won_status == "pending"
                )
            )
            if not deals:
                break
            moved = self.browse()
            for step, step_deals in deals.grouped("deal_step_id").items():
                next_stage = step._next_step().stage_id
                if not next_stage:
                    continue
                try:
                    condition = step._deal_auto_advance_condition()
                    condition.validate(self)
                except (ValueError, TypeError, NameError, SyntaxError) as error:
                    # e.g. a field removed with its add-on: the deal stays, the
                    # step's form refuses the condition when next edited
                    _logger.warning("Auto-advance condition of step %s ignored: %s", step.id, error)
                    continue
                matching = step_deals.search(Domain("id", "in", step_deals.ids) & condition)
                if not matching:
                    continue
                issues = matching._deal_gate_issues(next_stage)
                ready = matching.filtered(lambda lead, issues=issues: lead.id not in issues)
                if ready:
                    # the gate was checked just above, with the same rules
                    ready._deal_move_context(
                        "auto", note=step._deal_auto_advance_note(), skip_gate=True
                    ).write({"stage_id": next_stage.id})
                    moved |= ready
            moved_all |= moved
            deals = moved
        return moved_all
