from odoo import api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools.misc import clean_context

from odoo.addons.mail.tools.discuss import Store

from .mail_activity_deal_notify import DEAL_ENGINE_ACTIVITIES

# what links an activity to the script: set by the engine when it creates
# the activity, never changed afterwards by a client
DEAL_ACTIVITY_LINK_FIELDS = frozenset(
    {"deal_script_activity_id", "deal_step_id", "deal_mail_template_id", "deal_feedback_callback"}
)
DEAL_ACTIVITY_TARGET_FIELDS = frozenset({"res_model", "res_model_id", "res_id"})


class DealActivityDone:
    """Marks the archiving done by ``_action_done`` (a Python object: a
    context sent over RPC cannot carry one)."""

    __slots__ = ()


DEAL_ACTIVITY_DONE = DealActivityDone()


class MailActivity(models.Model):
    _name = "mail.activity"
    _inherit = ["mail.activity", "mail.activity.deal.notify"]

    deal_script_activity_id = fields.Many2one(
        "crm.deal.script.activity",
        string="Script Activity",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
        help="The deal script template that created this activity.",
    )
    deal_step_id = fields.Many2one(
        "crm.deal.script.step",
        string="Script Step",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
    deal_mail_template_id = fields.Many2one(
        "mail.template",
        string="Customer Message",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
        help="The customer message this activity offers to send: preview it in "
        "the composer or send it in one click. Sending it marks the activity done.",
    )
    deal_feedback_callback = fields.Boolean(
        string="Unhappy Customer Callback",
        readonly=True,
        help="Technical: created because the customer gave a low rating.",
    )

    def _to_store_defaults(self, target):
        # the activity offers its customer message next to its type's templates
        # (the chatter's "Preview" / "Send Now" buttons)
        fields_list = super()._to_store_defaults(target)
        return [
            Store.Many(
                "mail_template_ids",
                ["name"],
                value=lambda act: act.mail_template_ids | act.deal_mail_template_id,
            )
            if isinstance(item, Store.Many) and item.field_name == "mail_template_ids"
            else item
            for item in fields_list
        ]

    # ------------------------------------------------------------
    # DEAL CONTROL BOARD: activities change what the board shows
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        engine = self.env.su or (
            self.env.context.get("deal_engine_activities") is DEAL_ENGINE_ACTIVITIES
        )
        if not engine and any(
            f"default_{name}" in self.env.context for name in DEAL_ACTIVITY_LINK_FIELDS
        ):
            # default_* keys would link the activity as the values do
            self = self.with_context(
                **{f"default_{name}": False for name in DEAL_ACTIVITY_LINK_FIELDS}
            )
        if any(DEAL_ACTIVITY_LINK_FIELDS.intersection(vals) for vals in vals_list):
            if not engine:
                # a forged "script activity" would stand for the one a step
                # creates on entry (its template counts as open) and could then
                # be deleted: only the engine links an activity to a script
                raise AccessError(
                    self.env._(
                        "Only a deal's script creates the activities of its steps: "
                        "schedule a plain activity instead."
                    )
                )
            # the script's activities: born open, whatever default_* keys the
            # caller's context holds (default_active=False would pass the gate)
            self = self.with_env(self.env(context=clean_context(self.env.context)))
            vals_list = [
                dict(vals, active=True) if DEAL_ACTIVITY_LINK_FIELDS.intersection(vals) else vals
                for vals in vals_list
            ]
        activities = super().create(vals_list)
        activities._deal_board_notify()
        return activities

    def write(self, vals):
        if not self.env.su:
            if DEAL_ACTIVITY_LINK_FIELDS.intersection(vals) or (
                DEAL_ACTIVITY_TARGET_FIELDS.intersection(vals)
                and self.filtered(lambda act: act.deal_step_id or act.deal_script_activity_id)
            ):
                raise AccessError(
                    self.env._(
                        "An activity created by a deal script stays linked to its step and "
                        "deal: it cannot be detached."
                    )
                )
            if "active" in vals and not vals["active"] and not self._deal_done_marker():
                self._deal_verify_cancellable()
            if "user_id" in vals:
                # given to oneself, it would then be done in its assignee's place
                self._deal_verify_doable(new_user_id=vals["user_id"])
        return super().write(vals)

    def unlink(self):
        if not self.env.su:
            self._deal_verify_cancellable()
        return super().unlink()

    def _deal_done_marker(self):
        return self.env.context.get("deal_activity_done") is DEAL_ACTIVITY_DONE

    def _deal_gate_activities(self):
        """The activities of ``self`` the gate of their deal's current step
        waits for (the step requires its activities done). Supervisors are
        not held by them: an empty recordset for them."""
        required = self.filtered(
            lambda act: (
                act.deal_step_id
                and act.res_model == "crm.lead"
                and act.active
                and not act.deal_mail_template_id
            )
        )
        if not required or self.env.user.has_group("deal_stages.group_deal_supervisor"):
            return self.browse()
        config = self.env["crm.deal.script"]._deal_config()
        leads = self.env["crm.lead"].browse(required.mapped("res_id"))
        step_of = {lead.id: lead.deal_step_id.id for lead in leads.sudo() if lead.active}
        return required.filtered(
            lambda act: (
                (step := config.steps.get(act.deal_step_id.id))
                and step.require_activities_done
                and step_of.get(act.res_id) == step.id
            )
        )

    def _deal_verify_cancellable(self):
        """Refuse cancelling (deleting, archiving) what a step's gate waits for.

        The activities of a deal's current step that must be done to leave it
        are done, not cancelled; a supervisor may cancel them. Those of steps
        the deal left are the engine's to cancel.
        """
        for act in self._deal_gate_activities()[:1]:
            raise UserError(
                self.env._(
                    "The activity “%(activity)s” must be done before the deal leaves "
                    "the step %(step)s: mark it as done rather than cancelling it (only "
                    "a supervisor can cancel it).",
                    activity=act.summary or act.activity_type_id.name,
                    step=act.deal_step_id.name,
                )
            )

    def _deal_verify_doable(self, new_user_id=None):
        """Refuse marking done, in their place, what a step's gate waits for
        from someone else (production's or accounting's activity done by the
        salesperson would let the deal leave the step without them): the
        assignee does it, or a supervisor. Only they give it to another user.

        :param new_user_id: the assignee being written (a reassignment)
        """
        others = self._deal_gate_activities().filtered(
            lambda act: (
                act.user_id
                and act.user_id != self.env.user
                and (new_user_id is None or act.user_id.id != new_user_id)
            )
        )
        for act in others[:1]:
            if new_user_id is not None:
                raise UserError(
                    self.env._(
                        "The activity “%(activity)s” is assigned to %(user)s and the step "
                        "%(step)s waits for it: only they (or a supervisor) can give it to "
                        "someone else.",
                        activity=act.summary or act.activity_type_id.name,
                        user=act.user_id.name,
                        step=act.deal_step_id.name,
                    )
                )
            raise UserError(
                self.env._(
                    "The activity “%(activity)s” is assigned to %(user)s: only they (or a "
                    "supervisor) can mark it as done, as the step %(step)s waits for it.",
                    activity=act.summary or act.activity_type_id.name,
                    user=act.user_id.name,
                    step=act.deal_step_id.name,
                )
            )

    @api.constrains("deal_mail_template_id", "res_model")
    def _check_deal_mail_template_model(self):
        for act in self.filtered("deal_mail_template_id"):
            if act.deal_mail_template_id.model != act.res_model:
                raise ValidationError(
                    self.env._(
                        "The message an activity offers must be a template of its document's "
                        "model (%(model)s).",
                        model=act.res_model,
                    )
                )

    def _action_done(self, feedback=False, attachment_ids=None):
        if not self.env.su:
            self._deal_verify_doable()
        self._deal_board_notify()
        step_lead_ids = [
            act.res_id for act in self if act.deal_step_id and act.res_model == "crm.lead"
        ]
        # done is not cancelled: the archiving that follows is allowed
        result = super(
            MailActivity, self.with_context(deal_activity_done=DEAL_ACTIVITY_DONE)
        )._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if step_lead_ids:
            # a step's activity done may be all its gate waited for. The deal
            # moves as the script's system action: whoever did the activity
            # (e.g. production) need not have the right to edit the deal; a
            # failure of the move never undoes the activity done
            leads = self.env["crm.lead"].browse(step_lead_ids).sudo()
            leads._deal_auto_advance_safely()
        return result

    def _deal_board_notify(self):
        lead_ids = [activity.res_id for activity in self if activity.res_model == "crm.lead"]
        if lead_ids:
            self.env["crm.lead"].browse(lead_ids)._deal_board_notify()


class MailActivityType(models.Model):
    _name = "mail.activity.type"
    _inherit = ["mail.activity.type", "crm.deal.config.mixin"]
    # what _deal_defaults caches
    _deal_config_fields = frozenset({"summary", "default_note"})

    @tools.ormcache("self.id", "self.env.lang")
    def _deal_defaults(self):
        """(summary, default note) in the context's language: what a script
        activity without its own texts gets. Cached, as the entry automation
        creates activities on every move; cleared when they change."""
        return self.summary, self.default_note
