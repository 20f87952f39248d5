from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .crm_deal_script_version import COSMETIC_ACTIVITY_FIELDS, check_fixed


class CrmDealScriptActivity(models.Model):
    """An activity a script step creates on its deals (on entry, loss, SLA, change)."""

    _name = "crm.deal.script.activity"
    _description = "Deal Script Activity Template"
    _order = "step_id, sequence, id"

    step_id = fields.Many2one("crm.deal.script.step", required=True, index=True, ondelete="cascade")
    script_id = fields.Many2one(related="step_id.script_id", store=True, index=True)
    sequence = fields.Integer(default=10)
    trigger = fields.Selection(
        [
            ("enter", "On entry"),
            ("lost", "On refusal"),
            ("sla", "On deadline breach"),
            ("change", "On order change"),
        ],
        default="enter",
        required=True,
    )
    activity_type_id = fields.Many2one(
        "mail.activity.type",
        required=True,
        default=lambda self: self.env.ref("mail.mail_activity_data_todo", raise_if_not_found=False),
        domain="['|', ('res_model', '=', False), ('res_model', '=', 'crm.lead')]",
        ondelete="restrict",
    )
    summary = fields.Char(translate=True)
    note = fields.Html(translate=True)
    deadline_days = fields.Integer(string="Deadline (days)")
    deadline_working_days = fields.Boolean(
        string="Working Days",
        help="Count the deadline in working days of the assignee's (or the "
        "company's) working schedule instead of calendar days.",
    )
    assign_to = fields.Selection(
        [
            ("salesperson", "Salesperson"),
            ("team_leader", "Team leader"),
            ("user", "Specific user"),
        ],
        default="salesperson",
        required=True,
    )
    user_id = fields.Many2one("res.users", domain=[("share", "=", False)])
    reentry = fields.Selection(
        [
            ("once", "Once per deal"),
            ("always", "On every entry"),
        ],
        string="On Re-entry",
        default="once",
        required=True,
        help="Once per deal: never created again for a deal, done or not. On "
        "every entry: created again each time the deal enters the step, unless "
        "the previous one is still open.",
    )

    _deadline_days_positive = models.Constraint(
        "CHECK(deadline_days >= 0)",
        "The deadline of an activity cannot be negative.",
    )

    # published means fixed (crm.deal.script.version.mixin)
    @api.model_create_multi
    def create(self, vals_list):
        # published means fixed (crm.deal.script.version.mixin)
        check_fixed(self, "create", vals_list)
        return super().create(vals_list)

    def write(self, vals):
        check_fixed(self, "write", [vals], COSMETIC_ACTIVITY_FIELDS)
        return super().write(vals)

    def unlink(self):
        check_fixed(self, "unlink")
        return super().unlink()

    @api.depends("summary", "activity_type_id")
    def _compute_display_name(self):
        for template in self:
            template.display_name = template.summary or template.activity_type_id.name or ""

    @api.constrains("assign_to", "user_id")
    def _check_user(self):
        for template in self.filtered(lambda t: t.assign_to == "user" and not t.user_id):
            raise ValidationError(
                self.env._(
                    "The activity %(activity)s of step %(step)s is assigned to a "
                    "specific user: choose the user.",
                    activity=template.display_name,
                    step=template.step_id.name,
                )
            )
