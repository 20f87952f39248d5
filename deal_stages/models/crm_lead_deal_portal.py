"""Deal feature: the customer progress page (portal) and what it shares."""

import uuid

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import ensure_one


class CrmLeadDealPortal(models.AbstractModel):
    _name = "crm.lead.deal.portal"
    _description = "Deal: Customer Progress Page"

    deal_tracking_ref = fields.Char(
        string="Tracking Reference",
        tracking=True,
        copy=False,
        help="The carrier's tracking number of the shipment, sent to the customer "
        "in the shipment notice and shown on the customer progress page.",
    )
    deal_carrier = fields.Char(
        string="Carrier",
        tracking=True,
        copy=False,
        help="Who delivers the order, sent to the customer with the tracking reference.",
    )
    deal_portal_attachment_ids = fields.Many2many(
        "ir.attachment",
        "crm_lead_deal_portal_attachment_rel",
        "lead_id",
        "attachment_id",
        string="Shared Documents",
        copy=False,
        domain="[('res_model', '=', 'crm.lead'), ('res_id', '=', id)]",
        help="Documents of this deal (attached in its chatter) the customer may "
        "download from the customer progress page.",
    )

    @api.constrains("deal_portal_attachment_ids")
    def _check_deal_portal_attachments(self):
        for lead in self:
            foreign = lead.deal_portal_attachment_ids.filtered(
                lambda att, lead=lead: att.res_model != "crm.lead" or att.res_id != lead.id
            )
            if foreign:
                raise ValidationError(
                    self.env._(
                        "Only documents attached to the deal %(deal)s can be shared with "
                        "its customer (%(document)s is not).",
                        deal=lead.display_name,
                        document=foreign[0].name,
                    )
                )

    def action_deal_preview_portal(self):
        """Open the customer progress page as the customer sees it."""
        ensure_one(self)
        return {
            "type": "ir.actions.act_url",
            "target": "new",
            "url": self.get_portal_url(),
        }

    def _deal_portal_values(self):
        """What the customer progress page shows: plain values, nothing internal.

        Only the process (steps, current step, dates reached), the shipment
        references and the documents the salesperson chose to share: no notes,
        activities, amounts or other deals. Called as superuser by the portal
        controller once the token was checked.
        """
        self.ensure_one()
        steps = self.deal_script_id.step_ids.sorted(lambda s: (s.sequence, s.id))
        current = self.deal_step_id
        if not self.active:
            status = "lost"
        elif self.stage_id.is_won:
            status = "won"
        else:
            status = "open"
        reached = {}
        for log in self.deal_log_ids.sorted(lambda log: (log.date_in, log.id)):
            reached[log.step_id] = log.date_in
        position = list(steps).index(current) if current in steps else -1
        step_values = []
        for index, step in enumerate(steps):
            if status == "won" or (position >= 0 and index < position):
                state = "done"
            elif index == position:
                state = "current"
            else:
                state = "upcoming"
            step_values.append(
                {
                    "name": step.name,
                    "state": state,
                    "date": reached.get(step) if state != "upcoming" else False,
                }
            )
        return {
            "deal_name": self.name,
            "company_name": self.company_id.name or self.env.company.name,
            "status": status,
            "current_step": (current.name or self.stage_id.name) if status == "open" else False,
            "steps": step_values,
            "salesperson_name": self.user_id.name,
            "salesperson_email": self.user_id.email,
            "tracking_ref": self.deal_tracking_ref,
            "carrier": self.deal_carrier,
            "documents": [
                {
                    "name": attachment.name,
                    "url": f"{self.access_url}/documents/{attachment.id}"
                    f"?access_token={self._portal_ensure_token()}",
                }
                for attachment in self.deal_portal_attachment_ids
            ],
        }

    def _deal_rotate_portal_token(self):
        # a technical field: one statement, no automation nor tracking
        self.sudo()._write_multi([{"access_token": str(uuid.uuid4())} for _lead in self])
        self.invalidate_recordset(["access_token"])

    def action_deal_rotate_portal_token(self):
        """Revoke the customer's progress page link: a new one replaces it."""
        self.check_access("write")
        self._deal_rotate_portal_token()
        self._message_log_batch(
            bodies=dict.fromkeys(
                self.ids,
                Markup("<p>%s</p>")
                % self.env._(
                    "The customer's progress page link was renewed: links sent before no "
                    "longer open it."
                ),
            )
        )
        return True
