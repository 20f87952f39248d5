import math

from odoo import api, models
from odoo.exceptions import ValidationError

from ..tools.script_definition import RANGES


class CrmDealScriptBoundsMixin(models.AbstractModel):
    """The numbers of a process (deadlines, delays): finite and bounded.

    PostgreSQL's ``CHECK (x >= 0)`` lets NaN and Infinity through (NaN sorts
    above every number), and a deadline of millions of working hours is
    planned on the working schedule for ever: whoever writes them (the
    form, an RPC client, a process file), they are refused. The bounds are
    the process file's (``tools/script_definition.RANGES``).
    """

    _name = "crm.deal.script.bounds.mixin"
    _description = "Deal Process Numbers"

    def _deal_check_bounds(self, names):
        for record in self:
            for name in names:
                low, high = RANGES[name]
                value = record[name]
                if not (math.isfinite(value) and low <= value <= high):
                    raise ValidationError(
                        self.env._(
                            "%(field)s of %(record)s must be a number from 0 to %(max)s.",
                            field=record._fields[name].get_description(self.env)["string"],
                            record=record.display_name,
                            max=high,
                        )
                    )


class CrmDealScript(models.Model):
    _name = "crm.deal.script"
    _inherit = ["crm.deal.script", "crm.deal.script.bounds.mixin"]

    # the warning percent is an integer: its SQL check holds
    @api.constrains("sla_escalation_hours")
    def _check_sla_bounds(self):
        self._deal_check_bounds(["sla_escalation_hours"])


class CrmDealScriptStep(models.Model):
    _name = "crm.deal.script.step"
    _inherit = ["crm.deal.script.step", "crm.deal.script.bounds.mixin"]

    @api.constrains("sla_hours")
    def _check_sla_bounds(self):
        self._deal_check_bounds(["sla_hours"])


class CrmDealScriptActivity(models.Model):
    _name = "crm.deal.script.activity"
    _inherit = ["crm.deal.script.activity", "crm.deal.script.bounds.mixin"]

    @api.constrains("deadline_days")
    def _check_deadline_bounds(self):
        self._deal_check_bounds(["deadline_days"])
