"""Deal feature: exceptions to the process: refusal (lost), restore, order changes."""

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import DealOutcome, ensure_one


class CrmLeadDealException(models.AbstractModel):
    _name = "crm.lead.deal.exception"
    _description = "Deal: Exceptions"

    # ------------------------------------------------------------
    # EXCEPTIONS: refusal (lost), restore, order changes
    # ------------------------------------------------------------

    deal_change_ids = fields.One2many(
        "crm.deal.order.change", "lead_id", string="Order Changes", readonly=True
    )
    deal_change_count = fields.Integer(string="Changes", compute="_compute_deal_change_count")

    @api.depends("deal_change_ids")
    def _compute_deal_change_count(self):
        counts = dict(
            self.env["crm.deal.order.change"]._read_group(
                [("lead_id", "in", self.ids)], ["lead_id"], ["__count"]
            )
        )
        for lead in self:
            lead.deal_change_count = counts.get(lead, 0)

    @api.model
    def _deal_verified_lost_reason(self, value):
        """The lost reason given to Lost (wizard or RPC): an existing, active one."""
        reason = self._deal_verify_id(value, "crm.lost.reason", self.env._("lost reason"))
        if not reason.active:
            raise UserError(
                self.env._(
                    "The lost reason %(reason)s is archived: choose an active lost reason.",
                    reason=reason.name,
                )
            )
        return reason

    def _deal_before_set_lost(self, lost_reason_id):
        """Before Odoo's Lost: refuse deals missing a required reason.

        :return: ids of the deals already lost (see ``_deal_after_set_lost``)
        """
        lost_before = self._deal_lost_ids()
        reason = self.env["crm.lost.reason"].browse(lost_reason_id)
        self.filtered(lambda lead: lead.id not in lost_before)._deal_verify_lost_reason(reason)
        return lost_before

    def _deal_after_set_lost(self, lost_before):
        """After Odoo's Lost: the clean-up of the deals it just lost, in batch."""
        lost = self._deal_lost_ids() - lost_before
        if lost:
            self.browse(lost)._deal_process_lost()

    def _deal_lost_ids(self):
        """Ids of the deals of ``self`` that follow a script and are lost."""
        return {lead.id for lead in self if lead.deal_script_id and lead.won_status == "lost"}

    def _deal_handle_lost_status(self, lost_before):
        """Apply refusal / restore to deals whose won/lost status just changed.

        Called by ``write``: archiving at 0 % over RPC or import is a loss too.
        ``action_set_lost`` handles its deals itself, once its writes are done.
        """
        lost_now = self._deal_lost_ids()
        restored = self.browse(lost_before - lost_now).filtered("deal_script_id")
        if restored:
            restored._deal_process_restore()
        newly_lost = self.browse(lost_now - lost_before)
        if newly_lost and self._deal_current_move().cause != "lost":
            newly_lost._deal_verify_lost_reason()
            newly_lost._deal_process_lost()

    def _deal_verify_lost_reason(self, reason=None):
        """Refuse to lose deals without reason at steps that require one."""
        missing = self.filtered(
            lambda lead: (
                lead.deal_step_id.lost_reason_required and not (reason or lead.lost_reason_id)
            )
        )
        if missing:
            raise UserError(
                self.env._(
                    "A lost reason is required to mark a deal lost at the step %(step)s: "
                    "choose a lost reason for %(deals)s.",
                    step=missing[0].deal_step_id.name,
                    deals=", ".join(missing.mapped("display_name")),
                )
            )

    def _deal_process_lost(self):
        """Clean-up of deals just lost, in batch.

        A ``lost`` stay at the lost-at step (the reason in its note), the
        script's open activities cancelled (manual ones stay), the step's
        ``lost`` activities and its refusal message to the customer.
        """
        now = fields.Datetime.now()
        self._deal_close_stays(now)
        logs = self.env["crm.deal.stage.log"].sudo()  # system-owned history
        for reason, leads in self.grouped("lost_reason_id").items():
            logs |= leads._deal_move_context("lost", note=reason.name or False)._deal_open_stays(
                {lead.id: (lead.stage_id, lead.deal_step_id) for lead in leads}, date_in=now
            )
        # the entry work of the step is not redone for a lost deal
        logs.entry_done = True
        self._deal_cancel_script_activities()
        outcome = DealOutcome()
        step_by_lead = {lead.id: lead.deal_step_id for lead in self if lead.deal_step_id}
        steps = self.browse(step_by_lead)
        steps._deal_schedule_activities(step_by_lead, "lost", outcome)
        groups = {}
        for lead in steps:
            step = step_by_lead[lead.id]
            if step.lost_mail_template_id:
                key = (step.lost_mail_template_id, step.mail_mode or "auto")
                groups[key] = groups.get(key, self.browse()) | lead
        for (template, mode), leads in groups.items():
            leads._deal_send_template(template, mode, outcome)
        titles = {}
        for lead in self:
            if lead.deal_step_id:
                title = self.env._("Lost at the step %(step)s.", step=lead.deal_step_id.name)
            else:
                title = self.env._("Lost outside the steps of its script.")
            if lead.lost_reason_id:
                title += " " + self.env._("Reason: %(reason)s", reason=lead.lost_reason_id.name)
            titles[lead.id] = title
        outcome.post_titled(self, titles)

    def _deal_cancel_script_activities(self):
        """Cancel the open activities the script created (not the refusal clean-up).

        Manual activities stay; the clean-up of an earlier refusal too. The
        deadline's own activities (approaching, stalled, escalated) go with
        the step's: a lost deal has no deadline. The entry activities of a
        lost-at step that requires them done were not done: a restore creates
        them again (``once`` ones included), else its gate would no longer
        wait for them.
        """
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                "|",
                ("deal_mail_template_id", "!=", False),
                "&",
                ("deal_script_activity_id", "!=", False),
                ("deal_script_activity_id.trigger", "!=", "lost"),
                "&",
                ("deal_script_activity_id", "=", False),
                ("deal_step_id", "!=", False),
            ]
        )
        config = self.env["crm.deal.script"]._deal_config()
        step_of = {
            lead.id: lead.deal_step_id
            for lead in self
            if (step := config.steps.get(lead.deal_step_id.id)) and step.require_activities_done
        }
        undone = [
            (act.res_id, act.deal_script_activity_id.id)
            for act in activities
            if act.deal_script_activity_id.trigger == "enter"
            and act.deal_step_id
            and act.deal_step_id == step_of.get(act.res_id)
        ]
        activities.unlink()
        if undone:
            # one statement for the batch, as the templates are marked applied
            self.env.cr.execute(
                SQL(
                    "DELETE FROM crm_lead_deal_applied_activity_rel"
                    " WHERE (lead_id, script_activity_id) IN"
                    " (SELECT * FROM unnest(%s::int[], %s::int[]))",
                    [lead_id for lead_id, __ in undone],
                    [template_id for __, template_id in undone],
                )
            )
            self.invalidate_recordset(["deal_applied_activity_ids"])

    def _deal_process_restore(self):
        """Put restored deals back in the step they were lost at.

        A ``restore`` stay, then the step's entry work with its re-entry
        policy: ``once`` activities are not created again (but those a step
        requires done, cancelled by the loss: see _deal_cancel_script_activities).
        """
        Log = self.env["crm.deal.stage.log"].sudo()
        lost_log_by_lead = {}
        for log in Log.search([("lead_id", "in", self.ids), ("cause", "=", "lost")]):
            lost_log_by_lead.setdefault(log.lead_id.id, log)  # latest first
        leads = self.browse([lead_id for lead_id in self.ids if lead_id in lost_log_by_lead])
        if not leads:
            return
        in_place = leads.filtered(lambda lead: lead.stage_id == lost_log_by_lead[lead.id].stage_id)
        if in_place:
            now = fields.Datetime.now()
            in_place._deal_close_stays(now)
            in_place._deal_move_context("restore")._deal_open_stays(
                {lead.id: (lead.stage_id, lead.deal_step_id) for lead in in_place}, date_in=now
            )
        # moved while lost: back to the lost-at stage
        moved = (leads - in_place).grouped(lambda lead: lost_log_by_lead[lead.id].stage_id)
        for stage, stage_leads in moved.items():
            if stage:
                stage_leads._deal_move_context("restore", skip_gate=True).write(
                    {"stage_id": stage.id}
                )
        leads._deal_run_entry_automation()
        leads._deal_restore_refusal_activities()

    def _deal_restore_refusal_activities(self):
        """A restored deal: withdraw the refusal message, point at the clean-up.

        The proposed refusal message is cancelled (the customer must not be
        told the order is cancelled). The refusal's clean-up activities stay,
        as work may have started; the deal's note lists those still open.
        """
        activities = self.env["mail.activity"].search(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                ("deal_mail_template_id", "in", self.deal_step_id.lost_mail_template_id.ids),
                ("deal_script_activity_id.trigger", "=", "lost"),
            ]
        )
        proposals = activities.filtered("deal_mail_template_id")
        proposals.unlink()
        bodies = {}
        for lead_id, clean_up in (activities - proposals).grouped("res_id").items():
            bodies[lead_id] = Markup("<p>%s</p><ul>%s</ul>") % (
                self.env._(
                    "Restored. Activities of the refusal still open (cancel them if they no "
                    "longer apply):"
                ),
                Markup().join(
                    Markup("<li>%s</li>")
                    % self.env._(
                        "“%(activity)s” for %(user)s",
                        activity=act.summary or act.activity_type_id.name,
                        user=act.user_id.name,
                    )
                    for act in clean_up
                ),
            )
        if bodies:
            self.browse(bodies)._message_log_batch(bodies=bodies)

    def _deal_return_steps(self):
        """Steps an order change may send the deal back to: the current one and earlier."""
        self.ensure_one()
        steps = self.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        if self.deal_step_id not in steps:
            return steps.browse()
        return steps[: list(steps).index(self.deal_step_id) + 1]

    def _deal_default_return_step(self, change_type):
        """The script's return step for ``change_type``, if reachable, else the current step."""
        self.ensure_one()
        default = self.deal_script_id and self.deal_script_id._default_return_step(change_type)
        return default if default and default in self._deal_return_steps() else self.deal_step_id

    def action_deal_order_change(self):
        """Open the order change wizard (clear error if the deal can't be changed)."""
        ensure_one(self)
        self.env["crm.deal.order.change"]._verify_lead_changeable(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Order Change"),
            "res_model": "crm.deal.order.change.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_lead_id": self.id},
        }

    def action_view_deal_changes(self):
        ensure_one(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Order Changes"),
            "res_model": "crm.deal.order.change",
            "view_mode": "list,form",
            "domain": [("lead_id", "=", self.id)],
            "context": {"default_lead_id": self.id, "create": False},
        }
