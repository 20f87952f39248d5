from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools.misc import clean_context


class CrmDealCheck(models.Model):
    """A checklist item of one deal, instantiated when the deal enters a step.

    Created by the engine only. Users tick and untick them (``done``); who
    and when is recorded on the item and every change is logged in the
    deal's chatter, unticking included.
    """

    _name = "crm.deal.check"
    _description = "Deal Check Item"
    _order = "lead_id, step_id, sequence, id"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, index=True, ondelete="cascade", readonly=True
    )
    check_id = fields.Many2one(
        "crm.deal.script.check",
        string="Script Check Item",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
    step_id = fields.Many2one(
        "crm.deal.script.step", index=True, ondelete="set null", readonly=True
    )
    company_id = fields.Many2one(related="lead_id.company_id", store=True, index=True)
    sequence = fields.Integer(readonly=True)
    name = fields.Char(string="Check Item", required=True, readonly=True)
    required = fields.Boolean(related="check_id.required")
    done = fields.Boolean()
    done_by_id = fields.Many2one("res.users", string="Ticked By", readonly=True)
    done_date = fields.Datetime(string="Ticked On", readonly=True)

    _lead_check_unique = models.Constraint(
        "UNIQUE(lead_id, check_id)",
        "A deal has each check item of its script once.",
    )

    # fields a user ticking the list may change; the rest is the engine's
    USER_WRITABLE_FIELDS = frozenset({"done"})

    @api.model_create_multi
    def create(self, vals_list):
        # check items come from the script: users cannot invent their own,
        # nor sales administrators (a forged "ticked by")
        if not self.env.su:
            raise AccessError(
                self.env._("Check items are created by the deal script, not by hand.")
            )
        # born unticked whatever the caller's context says (default_done, ...)
        self = self.with_env(self.env(context=clean_context(self.env.context)))
        return super().create(
            [dict(vals, done=False, done_by_id=False, done_date=False) for vals in vals_list]
        )

    def write(self, vals):
        if not self.env.su and set(vals) - self.USER_WRITABLE_FIELDS:
            raise AccessError(self.env._("You can only tick or untick the items of a checklist."))
        if "done" not in vals:
            return super().write(vals)
        # ticking a deal's list is working on the deal: same rights as editing it
        self.lead_id.check_access("write")
        changed = self.filtered(lambda check: check.done != bool(vals["done"]))
        if vals["done"]:
            vals = {**vals, "done_by_id": self.env.uid, "done_date": fields.Datetime.now()}
        else:
            vals = {**vals, "done_by_id": False, "done_date": False}
        result = super().write(vals)
        changed._log_in_deals(bool(vals["done"]))
        if vals["done"] and changed:
            # a ticked item may be all the step's gate waited for
            changed.lead_id._deal_auto_advance_written()
        return result

    def _log_in_deals(self, done):
        """One note per deal listing the items just ticked or unticked."""
        if not self:
            return
        text = (
            self.env._("Checklist item ticked:") if done else self.env._("Checklist item unticked:")
        )
        bodies = {}
        for lead, checks in self.grouped("lead_id").items():
            bodies[lead.id] = Markup("<p>%s</p><ul>%s</ul>") % (
                text,
                Markup().join(Markup("<li>%s</li>") % check.name for check in checks),
            )
        # the user may write these deals (checked above): the note is theirs
        self.env["crm.lead"].browse(bodies)._message_log_batch(
            bodies=bodies, author_id=self.env.user.partner_id.id
        )
