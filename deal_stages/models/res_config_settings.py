from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .res_users import DIGEST_DEFAULT_HOUR, DIGEST_HOUR_PARAM


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    deal_digest_active = fields.Boolean(
        string="Daily Deal Digest",
        help="Email each salesperson their overdue and due-today deal activities and "
        "deals at risk every day, and each team leader their team's. Users can opt "
        "out in their preferences.",
    )
    deal_digest_hour = fields.Float(
        string="Digest Time",
        config_parameter=DIGEST_HOUR_PARAM,
        default=DIGEST_DEFAULT_HOUR,
        help="Local time of each user at which the digest is sent.",
    )

    @api.model
    def get_values(self):
        res = super().get_values()
        cron = self.env.ref("deal_stages.ir_cron_deal_digest", raise_if_not_found=False)
        res["deal_digest_active"] = bool(cron and cron.sudo().active)
        return res

    def set_values(self):
        res = super().set_values()
        cron = self.env.ref("deal_stages.ir_cron_deal_digest", raise_if_not_found=False)
        # the scheduled action is technical: settings rights are checked by the
        # settings themselves (sales administrators)
        if cron and cron.sudo().active != self.deal_digest_active:
            cron.sudo().active = self.deal_digest_active
        return res

    @api.constrains("deal_digest_hour")
    def _check_deal_digest_hour(self):
        for settings in self:
            if not 0 <= settings.deal_digest_hour < 24:
                raise ValidationError(
                    self.env._("The digest time is an hour of the day, from 00:00 to 23:59.")
                )
