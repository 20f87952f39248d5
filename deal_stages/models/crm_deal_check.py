from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
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
        if vals["done"] and not self.env.su:
            self._deal_verify_current_step()
        # a tick and a move of the deal, or two ticks, one after the other
        self.lead_id._deal_lock_rows()
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

    def _deal_verify_current_step(self):
        """Items are ticked in their step: not those of a step the deal left,
        nor of a later one it went back from (an order change). In a save
        that ticks and moves at once, the step being left still counts (its
        stay is open until the move is written)."""
        open_steps = {
            (log.lead_id.id, log.step_id.id)
            for log in self.env["crm.deal.stage.log"]
            .sudo()
            .search_fetch(
                [("lead_id", "in", self.lead_id.ids), ("date_out", "=", False)],
                ["lead_id", "step_id"],
            )
        }
        for check in self:
            if check.step_id != check.lead_id.deal_step_id and (
                (check.lead_id.id, check.step_id.id) not in open_steps
            ):
                raise UserError(self.env._("This item is not on the checklist of the deal's step."))

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

    # ------------------------------------------------------------
    # ENGINE: the checklists of the deals, in batch (called by crm.lead)
    # ------------------------------------------------------------

    @api.model
    def _create_for_deals(self, leads, step_by_lead, outcome=None):
        """Give the deals ``leads`` the check items of the steps they entered, in batch.

        A deal has each item once: re-entering a step keeps what was ticked.

        :param step_by_lead: {lead id: step entered}
        :param outcome: optional ``DealOutcome`` of the entry
        """
        # which steps have items: the scripts' structure (cached), no query
        config = self.env["crm.deal.script"]._deal_config()
        Check = self.env["crm.deal.script.check"]
        check_ids_of = {
            lead_id: config.steps[step.id].check_ids if step.id in config.steps else ()
            for lead_id, step in step_by_lead.items()
        }
        all_checks = Check.browse(
            list(dict.fromkeys(cid for ids in check_ids_of.values() for cid in ids))
        )
        if not all_checks:
            return self
        # check items are system-owned: users only tick them
        DealCheck = self.sudo()
        existing = {
            (check.lead_id.id, check.check_id.id)
            for check in DealCheck.search(
                [("lead_id", "in", list(step_by_lead)), ("check_id", "in", all_checks.ids)]
            )
        }
        vals_list = []
        for lead in leads.browse(step_by_lead):
            for check in all_checks.browse(check_ids_of[lead.id]):
                if (lead.id, check.id) in existing:
                    continue
                vals_list.append(
                    {
                        "lead_id": lead.id,
                        "check_id": check.id,
                        "step_id": check.step_id.id,
                        "sequence": check.sequence,
                        "name": check.with_context(lang=lead.user_id.lang or self.env.lang).name,
                    }
                )
                if outcome is not None:
                    outcome.done(
                        lead, self.env._("Checklist item “%(item)s” to tick.", item=check.name)
                    )
        return DealCheck.create(vals_list)

    @api.model
    def _create_for_steps(self, steps):
        """Instantiate new check items for the deals standing in ``steps``."""
        steps = steps.filtered(lambda step: not step.script_id.is_template)
        if not steps:
            return
        leads = self.env["crm.lead"].sudo().search([("deal_step_id", "in", steps.ids)])
        if leads:
            self._create_for_deals(leads, {lead.id: lead.deal_step_id for lead in leads})

    @api.model
    def _done_pairs(self, leads, checks, vals=None):
        """{(lead id, script check id)} ticked on the deals ``leads``.

        Counts ticks written in the same save (``deal_check_ids`` commands).
        """
        if not (leads and checks):
            return set()
        # the gate sees every item, whatever the user's read rules
        deal_checks = self.sudo().search(
            [("lead_id", "in", leads.ids), ("check_id", "in", checks.ids)]
        )
        done = {check.id: check.done for check in deal_checks}
        for command in (vals or {}).get("deal_check_ids") or []:
            if (
                isinstance(command, (list, tuple))
                and len(command) == 3
                and command[0] == 1
                and "done" in (command[2] or {})
            ):
                done[command[1]] = bool(command[2]["done"])
        return {(check.lead_id.id, check.check_id.id) for check in deal_checks if done[check.id]}

    @api.model
    def _ids_by_pair(self, leads, checks):
        """{(lead id, script check id): deal check id} of the deals ``leads``."""
        deal_checks = self.sudo().search(
            [("lead_id", "in", leads.ids), ("check_id", "in", checks.ids)]
        )
        return {(check.lead_id.id, check.check_id.id): check.id for check in deal_checks}
