from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models, tools
from odoo.exceptions import ValidationError

from .crm_deal_script_version import COSMETIC_ACTIVITY_FIELDS, check_fixed

# what the engine reads of a template on every move (``_deal_templates``);
# ``user_id`` is read when used: a user deleted since leaves no stale id
DEAL_TEMPLATE_CACHED_FIELDS = (
    "step_id", "activity_type_id", "summary", "note", "deadline_days", "deadline_working_days",
    "assign_to", "reentry",
)  # fmt: skip
# the latest deadline an activity template may give (ten years)
DEADLINE_MAX_DAYS = 3650


class CrmDealScriptActivity(models.Model):
    """An activity a script step creates on its deals (on entry, loss, SLA, change)."""

    _name = "crm.deal.script.activity"
    _description = "Deal Script Activity Template"
    _deal_verify_input = True
    # the engine caches the templates (_deal_templates): changes clear it
    _inherit = ["crm.deal.config.mixin"]
    _order = "step_id, sequence, id"
    # the user an activity is given to works in the script's company
    _check_company_auto = True

    step_id = fields.Many2one("crm.deal.script.step", required=True, index=True, ondelete="cascade")
    script_id = fields.Many2one(related="step_id.script_id", store=True, index=True)
    # the company rule's field: templates stay within their company
    company_id = fields.Many2one(related="step_id.company_id", store=True, index=True)
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
    user_id = fields.Many2one("res.users", domain=[("share", "=", False)], check_company=True)
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
        templates = super().create(vals_list)
        # and where the values put them (a caller's default_step_id too)
        check_fixed(templates, "create")
        return templates

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

    @api.constrains("deadline_days")
    def _check_deadline_days_range(self):
        for template in self:
            if not 0 <= template.deadline_days <= DEADLINE_MAX_DAYS:
                raise ValidationError(
                    self.env._(
                        "The deadline of the activity %(activity)s must be from 0 to 3,650 "
                        "days (ten years), not %(days)s.",
                        activity=template.display_name,
                        days=template.deadline_days,
                    )
                )

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

    # ------------------------------------------------------------
    # ENGINE: the activity this template gives a deal
    # ------------------------------------------------------------

    @api.model
    def _deal_templates(self, steps, trigger):
        """The templates of ``steps`` run on ``trigger``, in order, read from
        the configuration cache: the entry work of every move needs them, and
        they change only when an administrator edits the scripts."""
        self.browse().check_access("read")
        ids_of, values = self._deal_templates_cache()
        templates = self.browse(
            template_id
            for step_id in dict.fromkeys(steps._ids)  # each step once
            for template_id in ids_of.get((step_id, trigger), ())
        )
        # into the record cache, as a read of the database would put them
        # (what the transaction changed or read already stays)
        filling = templates.with_context(prefetch_langs=False)
        for fname in DEAL_TEMPLATE_CACHED_FIELDS:
            column = values[fname]
            self._fields[fname]._insert_cache(filling, [column[tid] for tid in templates.ids])
        return templates

    @api.model
    @tools.ormcache("self.env.lang")
    def _deal_templates_cache(self):
        """({(step id, trigger): template ids in order}, {field: {template id:
        value as read from the database}}) of every template, texts in the
        context's language. Cleared when templates change (config mixin)."""
        # configuration shared by all users (cached): the caller's access is
        # checked by _deal_templates
        templates = (
            self.sudo()
            .with_context(prefetch_langs=False)
            .search_fetch([], ["trigger", *DEAL_TEMPLATE_CACHED_FIELDS], order="sequence, id")
        )
        ids_of = {}
        for template in templates:
            ids_of.setdefault((template.step_id.id, template.trigger), []).append(template.id)
        values = {}
        for fname in DEAL_TEMPLATE_CACHED_FIELDS:
            cache = self._fields[fname]._get_cache(templates.env)
            values[fname] = {template_id: cache[template_id] for template_id in templates.ids}
        return {key: tuple(ids) for key, ids in ids_of.items()}, values

    def _determine_assignee(self, lead):
        """(user, warning): who gets the activity of this template on ``lead``."""
        self.ensure_one()
        if self.assign_to == "user" and self.user_id.active:
            return self.user_id, None
        salesperson = lead.user_id or self.env.user
        if salesperson._is_public() or salesperson._is_superuser():
            # the cron or the public rating page acting for a deal without
            # salesperson: someone who will see the activity gets it
            salesperson = (
                lead.team_id.user_id or lead.deal_script_id.sla_escalation_user_id or salesperson
            )
        if self.assign_to == "user":
            # archived since the step was set up: nobody would see the
            # activity, and its notice would go to a former employee
            return salesperson, self.env._(
                "The assigned user is archived or deleted: assigned to the salesperson."
            )
        if self.assign_to == "team_leader":
            if lead.team_id.user_id:
                return lead.team_id.user_id, None
            return salesperson, self.env._(
                "The sales team has no leader: assigned to the salesperson."
            )
        return salesperson, None

    def _determine_deadline(self, lead, user, today, cache):
        """Deadline of this template's activity on ``lead``, in calendar or working days.

        Working days follow the assignee's working schedule, else the deal's
        company's. ``cache`` keeps one computation per schedule and delay.
        """
        days = self.deadline_days
        if not days:
            return today
        calendar = self.deadline_working_days and (
            user.resource_calendar_id or (lead.company_id or self.env.company).resource_calendar_id
        )
        if not calendar:
            return today + timedelta(days=days)
        key = (calendar.id, days, today)
        if key not in cache:
            tz = pytz.timezone(calendar.tz or "UTC")
            # count from the next day: "3 working days" from Friday is Wednesday
            start = tz.localize(datetime.combine(today + timedelta(days=1), time.min))
            end = calendar.plan_days(days, start, compute_leaves=True)
            cache[key] = end.astimezone(tz).date() if end else today + timedelta(days=days)
        return cache[key]

    def _deal_activity_values(self, lead, outcome, shared):
        """The ``mail.activity`` values of this template's activity on ``lead``.

        :param outcome: the ``DealOutcome`` told what is created
        :param shared: what the batch computes once (``today``, ``multi_lang``,
            ``model_id``, the ``deadlines`` cache)
        """
        self.ensure_one()
        user, warning = self._determine_assignee(lead)
        template_lang = (
            self.with_context(lang=user.lang or self.env.lang) if shared["multi_lang"] else self
        )
        deadline = self._determine_deadline(lead, user, shared["today"], shared["deadlines"])
        summary, note = template_lang.summary, template_lang.note
        if not (summary and note):
            # the type's own texts (cached), in the assignee's language
            type_summary, type_note = template_lang.activity_type_id._deal_defaults()
            summary, note = summary or type_summary, note or type_note
        values = {
            "res_model_id": shared["model_id"],
            "res_id": lead.id,
            # known here: spares Odoo's recompute and its update
            "res_name": lead.display_name,
            "activity_type_id": self.activity_type_id.id,
            "summary": summary,
            "note": note,
            "date_deadline": deadline,
            "user_id": user.id,
            "automated": True,
            "deal_script_activity_id": self.id,
            "deal_step_id": self.step_id.id,
        }
        outcome.done(
            lead,
            self.env._(
                "Activity “%(activity)s” for %(user)s, due %(date)s.",
                activity=self.display_name,
                user=user.name,
                date=fields.Date.to_string(deadline),
            )
            + (f" {warning}" if warning else ""),
        )
        return values
