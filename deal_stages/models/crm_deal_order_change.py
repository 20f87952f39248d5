import math

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import DealOutcome
from .crm_lead_deal_sla import SLA_ENGINE_FIELDS

CHANGE_TYPES = [
    ("increase", "Increase"),
    ("decrease", "Decrease"),
    ("correction", "Correction"),
    ("other", "Other"),
]

# what a change is: recorded once, applied once, never edited afterwards
APPLIED_FIELDS = {
    "lead_id",
    "name",
    "sequence_number",
    "change_type",
    "amount_delta",
    "description",
    "return_step_id",
    "from_step_id",
    "user_id",
    "date",
    "expected_revenue",
    # related to the deal: written through, they would edit the deal from here
    "currency_id",
    "salesperson_id",
    "team_id",
    "company_id",
}


class CrmDealOrderChange(models.Model):
    """An order change (amendment) of a deal, applied when it is recorded.

    Creating one (from the wizard or over RPC) updates the expected revenue,
    sends the deal back to the return step, creates the step's ``change``
    activities, notifies the team leader and posts the change on the deal.
    """

    _name = "crm.deal.order.change"
    _description = "Deal Order Change"
    _order = "lead_id, sequence_number desc, id desc"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, index=True, ondelete="cascade"
    )
    name = fields.Char(string="Change", readonly=True, copy=False)
    sequence_number = fields.Integer(string="Number", readonly=True, copy=False)
    change_type = fields.Selection(CHANGE_TYPES, required=True, default="increase")
    currency_id = fields.Many2one(related="lead_id.company_currency", string="Currency")
    amount_delta = fields.Monetary(
        string="Amount Change",
        currency_field="currency_id",
        help="Added to the deal's expected revenue (negative to reduce it).",
    )
    description = fields.Text()
    return_step_id = fields.Many2one(
        "crm.deal.script.step",
        ondelete="restrict",
        help="The step the deal goes back to (its current step or an earlier one). "
        "Empty: the script's default for the change type, else the current step.",
    )
    from_step_id = fields.Many2one("crm.deal.script.step", readonly=True, ondelete="set null")
    user_id = fields.Many2one(
        "res.users", string="Recorded By", default=lambda self: self.env.user, readonly=True
    )
    date = fields.Datetime(default=fields.Datetime.now, readonly=True)
    expected_revenue = fields.Monetary(
        string="Expected Revenue After",
        currency_field="currency_id",
        readonly=True,
        copy=False,
    )
    salesperson_id = fields.Many2one(related="lead_id.user_id", string="Salesperson")
    team_id = fields.Many2one(related="lead_id.team_id", string="Sales Team")
    company_id = fields.Many2one(related="lead_id.company_id", store=True, index=True)

    _number_unique_per_deal = models.Constraint(
        "UNIQUE(lead_id, sequence_number)",
        "Two order changes of a deal cannot have the same number.",
    )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        # one after the other: each change applies to the deal as the previous
        # one left it (its step, revenue and number)
        changes = self.browse()
        for vals in vals_list:
            vals = self._verified_input(vals)
            lead = self.env["crm.lead"].browse(vals["lead_id"])
            vals = dict(vals, **self._applied_values(lead, vals))
            change = super().create([vals])
            change._apply()
            changes |= change
        return changes

    def copy_data(self, default=None):
        # a copy would be recorded and applied a second time (copy, duplicate)
        raise UserError(
            self.env._(
                "An order change cannot be copied: it is applied when it is recorded. "
                "Record a new change instead."
            )
        )

    @api.model
    def _verified_input(self, vals):
        """``vals`` as an RPC client may send them, checked and normalised:
        a clear message for a missing or wrong deal, step, type or amount."""
        Lead = self.env["crm.lead"]
        if not vals.get("lead_id"):
            raise UserError(self.env._("An order change needs the deal it changes (lead_id)."))
        vals = dict(
            vals, lead_id=Lead._deal_verify_id(vals["lead_id"], "crm.lead", self.env._("deal")).id
        )
        if vals.get("return_step_id"):
            step = Lead._deal_verify_id(
                vals["return_step_id"], "crm.deal.script.step", self.env._("return step")
            )
            vals["return_step_id"] = step.id
        change_type = vals.get("change_type") or "increase"
        types = dict(CHANGE_TYPES)
        if not isinstance(change_type, str) or change_type not in types:
            raise UserError(
                self.env._(
                    "“%(value)s” is not a change type: use one of %(types)s.",
                    value=repr(change_type)[:50],
                    types=", ".join(types),
                )
            )
        vals["change_type"] = change_type
        vals["amount_delta"] = self._verified_amount(vals.get("amount_delta"), change_type)
        return vals

    @api.model
    def _verified_amount(self, amount, change_type):
        """The amount change as a finite number whose sign fits the type."""
        amount = amount or 0.0
        if isinstance(amount, bool) or not isinstance(amount, (int, float, str)):
            amount = math.nan
        try:
            amount = float(amount)
        except ValueError:
            amount = math.nan
        if not math.isfinite(amount):
            raise UserError(
                self.env._("The amount change of an order change must be a finite number.")
            )
        if (change_type == "increase" and amount < 0) or (change_type == "decrease" and amount > 0):
            raise UserError(
                self.env._(
                    "An increase adds a positive amount and a decrease a negative one: "
                    "record a correction to change the amount the other way."
                )
            )
        return amount

    @api.model
    def _applied_values(self, lead, vals):
        """Values set by the system: the record is the change as it happened."""
        self._verify_lead_changeable(lead)
        # two changes of a deal at once: the second waits, then is retried
        # by Odoo on fresh data (never two changes with the same number)
        lead._deal_lock_rows()
        number = (
            self.sudo()._read_group([("lead_id", "=", lead.id)], [], ["sequence_number:max"])[0][0]
            or 0
        ) + 1
        change_type = vals.get("change_type") or "increase"
        revenue_after = lead.expected_revenue + (vals.get("amount_delta") or 0.0)
        if revenue_after < 0:
            raise UserError(
                self.env._(
                    "This change would bring the expected revenue of %(deal)s below zero "
                    "(%(revenue)s): check the amount.",
                    deal=lead.display_name,
                    revenue=revenue_after,
                )
            )
        return_step = self.env["crm.deal.script.step"].browse(
            vals.get("return_step_id") or lead._deal_default_return_step(change_type).id
        )
        allowed = lead._deal_return_steps()
        if return_step not in allowed:
            raise UserError(
                self.env._(
                    "An order change can send the deal %(deal)s back to its current step or "
                    "an earlier one of its script, not to %(step)s. Choose one of: "
                    "%(steps)s.",
                    deal=lead.display_name,
                    step=return_step.display_name,
                    steps=", ".join(allowed.mapped("name")),
                )
            )
        return {
            "sequence_number": number,
            "name": self.env._("Change %(number)s", number=number),
            "from_step_id": lead.deal_step_id.id,
            "user_id": self.env.uid,
            "date": fields.Datetime.now(),
            "expected_revenue": revenue_after,
            "return_step_id": return_step.id,
        }

    def write(self, vals):
        if APPLIED_FIELDS.intersection(vals):
            raise UserError(
                self.env._(
                    "An order change is applied when it is recorded and cannot be edited "
                    "afterwards. Record a new change (e.g. a correction) instead."
                )
            )
        return super().write(vals)

    # ------------------------------------------------------------
    # APPLYING
    # ------------------------------------------------------------

    @api.model
    def _verify_lead_changeable(self, lead):
        """Refuse, with a clear message, a change of a deal that cannot change."""
        lead.check_access("write")
        if lead.won_status == "lost" or not lead.active:
            raise UserError(
                self.env._(
                    "The deal %(deal)s is lost: restore it before recording an order change.",
                    deal=lead.display_name,
                )
            )
        if lead.won_status == "won" or lead.stage_id.is_won:
            raise UserError(
                self.env._(
                    "The deal %(deal)s is won: a closed deal's order cannot be changed.",
                    deal=lead.display_name,
                )
            )
        if not lead.deal_script_id:
            raise UserError(
                self.env._(
                    "The deal %(deal)s does not follow a deal script: there is no step to "
                    "send it back to.",
                    deal=lead.display_name,
                )
            )
        if not lead.deal_step_id:
            raise UserError(
                self.env._(
                    "The deal %(deal)s is in the stage %(stage)s, which is not a step of its "
                    "script %(script)s: move it to a step first.",
                    deal=lead.display_name,
                    stage=lead.stage_id.display_name,
                    script=lead.deal_script_id.display_name,
                )
            )

    def _apply(self):
        """Apply the change to its deal (revenue, step, activities, notes)."""
        self.ensure_one()
        lead = self.lead_id
        step = self.return_step_id
        type_label = dict(self._fields["change_type"]._description_selection(self.env))[
            self.change_type
        ]
        revenue_before = lead.expected_revenue
        if self.amount_delta:
            lead.expected_revenue = revenue_before + self.amount_delta
        moving = lead._deal_move_context(
            "change", note=f"{self.name}: {type_label}", skip_gate=True
        )
        sla_kept = None
        if step.stage_id != lead.stage_id:
            moving.write({"stage_id": step.stage_id.id})
        else:
            if not self.amount_delta:
                # nothing changed in the order: the step's clock keeps running
                # (else a change "for nothing" would restart a late deal's deadline)
                sla_kept = {name: lead[name] for name in SLA_ENGINE_FIELDS}
            # back to the step it stands in: a new stay, the step is done again
            now = fields.Datetime.now()
            lead._deal_close_stays(now)
            moving._deal_open_stays({lead.id: (lead.stage_id, lead.deal_step_id)}, date_in=now)
        # the history is system-owned; the stay this change opened links to it
        self.env["crm.deal.stage.log"].sudo().search(
            [("lead_id", "=", lead.id), ("date_out", "=", False)]
        ).change_id = self
        # the step's entry work (re-entry policy), whether or not rules run
        lead._deal_run_entry_automation()
        if sla_kept is not None:
            lead._deal_sla_write({lead.id: sla_kept})
        outcome = DealOutcome()
        lead._deal_schedule_activities({lead.id: step}, "change", outcome)
        lead._deal_handoff_order_change(self, outcome)
        self._post_on_deal(type_label, revenue_before, outcome)

    def _post_on_deal(self, type_label, revenue_before, outcome):
        """Post the change on the deal's chatter, notifying the team leader."""
        lead = self.lead_id
        currency = self.currency_id or self.env.company.currency_id
        body = Markup("<p><strong>%s</strong> (%s)</p>") % (self.name, type_label)
        if self.description:
            body += Markup("<p>%s</p>") % self.description
        lines = []
        if self.amount_delta:
            lines.append(
                self.env._(
                    "Expected revenue: %(before)s → %(after)s",
                    before=currency.format(revenue_before),
                    after=currency.format(lead.expected_revenue),
                )
            )
        if self.from_step_id and self.from_step_id != self.return_step_id:
            lines.append(
                self.env._(
                    "Back to the step %(step)s (from %(origin)s).",
                    step=self.return_step_id.name,
                    origin=self.from_step_id.name,
                )
            )
        else:
            lines.append(
                self.env._("The step %(step)s starts again.", step=self.return_step_id.name)
            )
        done, skipped = outcome.lines.get(lead.id, ([], []))
        lines += done + skipped
        body += Markup("<ul>%s</ul>") % Markup().join(Markup("<li>%s</li>") % li for li in lines)
        leader = lead.team_id.user_id
        partner_ids = [leader.partner_id.id] if leader and leader != self.env.user else []
        lead.message_post(
            body=body,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
            partner_ids=partner_ids,
        )
