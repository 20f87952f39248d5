from odoo import api, fields, models, tools

from odoo.addons.mail.tools.discuss import Store


class MailActivity(models.Model):
    _inherit = "mail.activity"

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
        activities = super().create(vals_list)
        activities._deal_board_notify()
        return activities

    def _action_done(self, feedback=False, attachment_ids=None):
        self._deal_board_notify()
        step_lead_ids = [
            act.res_id for act in self if act.deal_step_id and act.res_model == "crm.lead"
        ]
        result = super()._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if step_lead_ids:
            # a step's activity done may be all its gate waited for. The deal
            # moves as the script's system action: whoever did the activity
            # (e.g. production) need not have the right to edit the deal
            self.env["crm.lead"].browse(step_lead_ids).sudo()._deal_auto_advance_written()
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
