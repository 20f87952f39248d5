"""Deal feature: the supervisors' control board (deals at risk) and its live refresh."""

from datetime import timedelta

from odoo import api, fields, models
from odoo.fields import Domain

# without a step deadline (SLA), a deal standing longer than this in a step is at risk
DEAL_DEFAULT_RISK_DAYS = 14
# bus notification telling the open deal boards to reload
DEAL_BOARD_NOTIFICATION = "deal_stages/board_changed"


class CrmLeadDealControl(models.AbstractModel):
    _name = "crm.lead.deal.control"
    _description = "Deal: Control Board"

    # ------------------------------------------------------------
    # DEAL CONTROL BOARD (supervisors' live view, deals at risk)
    # ------------------------------------------------------------

    deal_days_in_step = fields.Integer(
        string="Days in Step",
        compute="_compute_deal_control",
        help="Days since the deal entered its current stage.",
    )
    deal_step_sla_days = fields.Float(
        string="Step Deadline (days)",
        compute="_compute_deal_control",
        help="Days from the deal's entry in its current step to the step's deadline "
        "(working hours of the schedule, nights and weekends between them included; "
        "0: no deadline).",
    )
    deal_overdue_activity_count = fields.Integer(
        string="Overdue Script Activities",
        compute="_compute_deal_control",
        help="Activities the script created on this deal that are past their due date.",
    )
    deal_gate_blocked = fields.Boolean(
        string="Gate Blocked",
        compute="_compute_deal_gate_blocked",
        help="The deal cannot move on to the next step yet: requirements are missing.",
    )
    deal_at_risk = fields.Boolean(
        string="At Risk",
        compute="_compute_deal_control",
        search="_search_deal_at_risk",
        help="An open deal with overdue script activities, or whose step deadline "
        "is near (warning) or passed; in a step without a deadline, one that stands "
        "there longer than the 'deal_stages.risk_days' system parameter (14 days by "
        "default).",
    )

    # ------------------------------------------------------------
    # COMPUTES
    # ------------------------------------------------------------

    def _deal_risk_days(self):
        return int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("deal_stages.risk_days", DEAL_DEFAULT_RISK_DAYS)
        )

    @api.depends_context("uid")
    @api.depends(
        "date_last_stage_update",
        "deal_step_id",
        "activity_ids.date_deadline",
        "deal_sla_state",
        "deal_sla_deadline",
        "deal_sla_warning_date",
        "deal_handoff_state",
    )
    def _compute_deal_control(self):
        now = fields.Datetime.now()
        risk_days = self._deal_risk_days()
        lead_ids = [lead_id for lead_id in self.ids if lead_id]
        overdue = dict(
            self.env["mail.activity"]._read_group(
                self._deal_overdue_activity_domain() + [("res_id", "in", lead_ids)],
                ["res_id"],
                ["__count"],
            )
        )
        # the current stay tells when the deal entered its step (a migration
        # to a new version keeps the time spent); the history is readable by
        # whoever reads the deal, sudo spares the rule joins
        entered = self.env["crm.deal.stage.log"].sudo()._step_entry_dates(lead_ids)
        for lead in self:
            since = (
                entered.get(lead._origin.id)
                or lead.date_last_stage_update
                or lead.create_date
                or now
            )
            # the step's deadline is the SLA engine's (working time, see
            # _deal_sla_start): shown as days from the entry in the step; the
            # same conditions as _search_deal_at_risk
            with_deadline = lead.deal_sla_state != "none"
            deadline = with_deadline and lead.deal_sla_deadline
            warning = with_deadline and lead.deal_sla_warning_date
            lead.deal_days_in_step = (now - since).days if lead.deal_script_id else 0
            lead.deal_step_sla_days = (
                max((deadline - since).total_seconds(), 0) / 86400 if deadline else 0
            )
            lead.deal_overdue_activity_count = overdue.get(lead.id, 0)
            if with_deadline:
                late = (
                    lead.deal_sla_state in ("warning", "breached")
                    or bool(warning and warning <= now)
                    or bool(deadline and deadline <= now)
                )
            else:
                late = now - since > timedelta(days=risk_days)
            lead.deal_at_risk = bool(
                lead.deal_script_id
                and lead.active
                and lead.won_status == "pending"
                and (
                    lead.deal_overdue_activity_count
                    or late
                    or lead.deal_handoff_state in ("failed", "dead")
                )
            )

    def _deal_overdue_activity_domain(self):
        return [
            ("res_model", "=", "crm.lead"),
            ("deal_step_id", "!=", False),
            ("date_deadline", "<", fields.Date.context_today(self)),
        ]

    def _search_deal_at_risk(self, operator, value):
        """Deals at risk: open, with overdue script activities, or whose step
        deadline (the SLA engine's, in working time) is near or passed; in a
        step without a deadline, standing there longer than the risk days.

        Stored columns only (one subquery per condition): the deadline's state
        as the cron last set it, or its dates already reached since.
        """
        if operator != "in":
            return NotImplemented
        now = fields.Datetime.now()
        overdue_leads = self.env["mail.activity"]._search(self._deal_overdue_activity_domain())
        with_deadline = Domain("deal_sla_state", "!=", "none")
        late = with_deadline & (
            Domain("deal_sla_state", "in", ["warning", "breached"])
            | Domain("deal_sla_warning_date", "<=", now)
            | Domain("deal_sla_deadline", "<=", now)
        )
        # the current stay started before the risk days; "any!" skips the
        # history's record rules, as the condition only filters deals the
        # user reads
        stalled = ~with_deadline & Domain(
            "deal_log_ids",
            "any!",
            [
                ("date_out", "=", False),
                ("date_in", "<", now - timedelta(days=self._deal_risk_days())),
            ],
        )
        return (
            Domain("deal_script_id", "!=", False)
            & Domain("won_status", "=", "pending")
            & Domain("active", "=", True)
            & (
                Domain("id", "in", overdue_leads.subselect("res_id"))
                | late
                | stalled
                | Domain("deal_handoff_state", "in", ["failed", "dead"])
            )
        )

    def _compute_deal_gate_blocked(self):
        # the requirements of the current steps, in batch (see GATES); at the
        # last step they are what winning the deal needs
        deals = self.filtered(lambda lead: lead.deal_step_id and lead.id)
        blocked = deals._deal_requirement_issues({lead.id: lead.deal_step_id for lead in deals})
        for lead in self:
            lead.deal_gate_blocked = bool(blocked.get(lead.id))

    # ------------------------------------------------------------
    # LIVE BOARD
    # ------------------------------------------------------------

    def _deal_board_notify(self):
        """Tell the open deal boards to reload, once per transaction.

        The message goes to the salespeople group's bus channel, which every
        CRM user's browser listens to; it carries no data, the board reloads
        through the ORM with the user's own rights.
        """
        if not any(self.sudo().mapped("deal_script_id")):
            return
        data = self.env.cr.precommit.data
        if data.get("deal_stages.board_notified"):
            return
        data["deal_stages.board_notified"] = True
        # browse, not env.ref: no existence query on every move
        group_id = self.env["ir.model.data"]._xmlid_to_res_id("sales_team.group_sale_salesman")
        self.env["bus.bus"]._sendone(
            self.env["res.groups"].browse(group_id), DEAL_BOARD_NOTIFICATION, {}
        )
