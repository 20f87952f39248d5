from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .crm_deal_script_version import COSMETIC_CHECK_FIELDS, check_fixed


class CrmDealScriptCheck(models.Model):
    """A checklist item of a step: deals entering the step get it to tick."""

    _name = "crm.deal.script.check"
    _inherit = ["crm.deal.config.mixin"]
    _description = "Deal Script Check Item"
    _deal_verify_input = True
    _order = "step_id, sequence, id"

    step_id = fields.Many2one("crm.deal.script.step", required=True, index=True, ondelete="cascade")
    script_id = fields.Many2one(related="step_id.script_id", store=True, index=True)
    company_id = fields.Many2one(related="step_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(string="Check Item", required=True, translate=True)
    required = fields.Boolean(
        default=True,
        help="The deal cannot leave the step until this item is ticked. Items "
        "that are not required are reminders only.",
    )

    # the scripts' structure is cached (crm.deal.script._deal_config)
    _deal_config_fields = frozenset({"step_id", "required"})

    @api.constrains("name")
    def _check_name_not_blank(self):
        for check in self:
            if not (check.name or "").strip():
                raise ValidationError(
                    self.env._("A checklist item needs a name: the salesperson ticks what it says.")
                )

    @api.model_create_multi
    def create(self, vals_list):
        # published means fixed (crm.deal.script.version.mixin)
        check_fixed(self, "create", vals_list)
        checks = super().create(vals_list)
        # and where the values put them (a caller's default_step_id too)
        check_fixed(checks, "create")
        # deals already standing in the step get the new item too, so the
        # checklist and the gate always agree
        self.env["crm.deal.check"]._create_for_steps(checks.step_id)
        return checks

    def write(self, vals):
        check_fixed(self, "write", [vals], COSMETIC_CHECK_FIELDS)
        return super().write(vals)

    def unlink(self):
        check_fixed(self, "unlink")
        return super().unlink()
