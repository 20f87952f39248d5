from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL


class CrmDealHandoffAcknowledgementMixin(models.AbstractModel):
    """The receiver's side of a hand-off (mixed into ``crm.deal.handoff``):
    its confirmation over JSON-2 that it stored the document, and what
    follows an acknowledgement, whether it came by this call or in the
    answer to a delivery (``_record_outcomes``)."""

    _name = "crm.deal.handoff.acknowledgement.mixin"
    _description = "Deal Hand-off: Acknowledgement by the Receiver"

    # ------------------------------------------------------------
    # ACKNOWLEDGEMENT (JSON-2, integration users)
    # ------------------------------------------------------------

    @api.model
    def acknowledge(self, idempotency_key, external_ref=None):
        """The receiver confirms it stored the hand-off ``idempotency_key``.

        Called over JSON-2 (``/json/2/crm.deal.handoff/acknowledge``) with the
        API key of a user in *Deal hand-off integration*. Idempotent: the same
        call again answers the same. Refused for unknown keys and for keys of
        hand-offs outside the user's companies (the same answer: no key is
        confirmed to exist), and for cancelled hand-offs.

        :return: dict with ``idempotency_key``, ``state``, ``external_ref``
        """
        if not self.env.user.has_group("deal_stages.group_deal_integration"):
            raise AccessError(self.env._("Only integration users may acknowledge hand-offs."))
        if (
            not isinstance(idempotency_key, str)
            or not idempotency_key.strip()
            or len(idempotency_key) > 255
            or "\x00" in idempotency_key
        ):
            raise UserError(self.env._("Give the idempotency key (webhook-id) of the hand-off."))
        if external_ref is not None and (
            isinstance(external_ref, bool)
            or not isinstance(external_ref, (str, int))
            or "\x00" in str(external_ref)
        ):
            raise UserError(self.env._("The document id (external_ref) must be a text."))
        external_ref = str(external_ref).strip()[:256] if external_ref not in (None, "") else ""
        # with the caller's rights: the record rules keep other companies out
        handoff = self.search([("idempotency_key", "=", idempotency_key.strip())], limit=1)
        if not handoff:
            raise UserError(
                self.env._("No hand-off has the key %(key)s.", key=idempotency_key.strip())
            )
        # the engine writes the row (integration users only read hand-offs);
        # locked: the cron may be recording an answer for it right now
        handoff = handoff.sudo()
        self.env.execute_query(
            SQL("SELECT id FROM crm_deal_handoff WHERE id = %s FOR UPDATE", handoff.id)
        )
        handoff.invalidate_recordset()
        if handoff.state == "cancelled":
            raise UserError(
                self.env._(
                    "The hand-off %(key)s was cancelled in Odoo: it cannot be acknowledged.",
                    key=handoff.idempotency_key,
                )
            )
        if handoff.state == "acknowledged":
            if external_ref and handoff.external_ref and external_ref != handoff.external_ref:
                raise UserError(
                    self.env._(
                        "The hand-off %(key)s was already acknowledged as document %(ref)s.",
                        key=handoff.idempotency_key,
                        ref=handoff.external_ref,
                    )
                )
            if external_ref and not handoff.external_ref:
                handoff.external_ref = external_ref
        else:
            now = fields.Datetime.now()
            handoff.write(
                {
                    "state": "acknowledged",
                    "external_ref": external_ref or handoff.external_ref or False,
                    "date_acknowledged": now,
                    "date_sent": handoff.date_sent or now,
                    "next_attempt": False,
                }
            )
            handoff._log_on_deals(
                author_note=self.env._("confirmed by %(user)s", user=self.env.user.name)
            )
            handoff._after_acknowledged()
        return {
            "idempotency_key": handoff.idempotency_key,
            "state": handoff.state,
            "external_ref": handoff.external_ref or "",
        }

    def _after_acknowledged(self):
        if not self:
            return
        self._close_activities(self.env._("The hand-off was acknowledged."))
        # the acknowledgement may meet a step's condition ("handed off"):
        # the engine moves those deals on, with its own rights. A deal that
        # cannot move on (e.g. an automation rule refusing the stage) is
        # reported on the deal: the acknowledgement is kept, and the other
        # deals of the cron's batch move on
        leads = self.lead_id.sudo()
        if not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids():
            return
        try:
            with self.env.cr.savepoint():
                leads._deal_auto_advance()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except Exception:  # noqa: BLE001 - each deal again, reported on its own
            for lead in leads:
                lead._deal_auto_advance_safely()
