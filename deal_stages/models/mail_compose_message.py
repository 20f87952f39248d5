from odoo import models


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    def _action_send_mail(self, auto_commit=False):
        """Sending a proposed customer message completes its activity."""
        result = super()._action_send_mail(auto_commit=auto_commit)
        for composer in self.filtered(
            lambda c: c.model == "crm.lead" and c.template_id and c.composition_mode == "comment"
        ):
            activities = self.env["mail.activity"].search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("res_id", "in", composer._evaluate_res_ids()),
                    ("deal_mail_template_id", "=", composer.template_id.id),
                ]
            )
            if activities:
                activities.action_feedback(feedback=self.env._("Message sent to the customer."))
        return result
