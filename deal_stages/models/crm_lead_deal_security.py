import logging
from datetime import timedelta

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY
from odoo.tools import SQL
from odoo.tools.misc import clean_context

from ..tools import DealEngineCollector, ensure_one
from .crm_lead_deal_sla import SLA_ENGINE_FIELDS
from .mail_activity_deal_notify import deal_notify_held

_logger = logging.getLogger(__name__)

# written by the engine (or, for the bridges' proofs, computed from the
# documents) and never by a client: see _deal_engine_fields
DEAL_ENGINE_FIELDS = SLA_ENGINE_FIELDS | {
    "deal_step_id",
    "deal_progress",
    "deal_applied_activity_ids",
    "deal_review_requested",
    # the progress page's key: generated, rotated, never chosen
    "access_token",
}
# who may put a deal straight into a later step (create, import, a script
# assigned to a deal already past its first step): logged as an override
DEAL_OVERRIDE_GROUPS = ("deal_stages.group_deal_supervisor", "sales_team.group_sale_manager")


class DealCreation:
    """Marks the stays ``crm.lead.create`` opens (a Python object: a context
    sent over RPC cannot carry one, see ``DealMove``)."""

    __slots__ = ("pending",)

    def __init__(self):
        self.pending = True


class DealSlaOnly:
    """Restricts the deadline cron to one deal (a Python object, set by the
    cron itself when a batch failed)."""

    __slots__ = ("lead_id",)

    def __init__(self, lead_id):
        self.lead_id = lead_id


# a deal whose escalation failed is looked at again this much later
DEAL_SLA_RETRY = timedelta(hours=1)


class CrmLead(models.Model):
    """The deal's write paths obey the script, whoever calls them.

    Over RPC every field without ``groups`` is writable and the context is
    the caller's: the fields the engine owns are refused to clients, a deal
    enters its script only where the gate would let it, and the public
    methods check their input.
    """

    _inherit = "crm.lead"

    # ------------------------------------------------------------
    # ENGINE-OWNED FIELDS
    # ------------------------------------------------------------

    @api.model
    def _deal_engine_fields(self):
        """Names of the fields only the engine and the documents write.

        Bridge add-ons add their proofs (paid, delivered, ...). The engine
        writes them as superuser (the system acts), the ORM recomputes the
        computed ones: neither goes through a client's ``write``.
        """
        return DEAL_ENGINE_FIELDS

    def _deal_verify_engine_fields(self, vals_list, defaults=False):
        """Refuse client values (or ``default_*`` context keys) of engine fields."""
        if self.env.su:
            return
        engine = self._deal_engine_fields()
        names = {name for vals in vals_list for name in engine.intersection(vals)}
        if defaults:
            names |= {
                key[8:]
                for key in self.env.context
                if key.startswith("default_") and key[8:] in engine
            }
        if names:
            field = self._fields[min(names)]
            raise AccessError(
                self.env._(
                    "The field “%(field)s” of a deal is set by its script and its documents: "
                    "it cannot be edited.",
                    field=field._description_string(self.env),
                )
            )

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        self._deal_verify_engine_fields(vals_list, defaults=True)
        # a script or a stage sent as a default_* context key is judged as a
        # value (team, retired version, first step): the context is the caller's
        defaults = {
            name: self.env.context[f"default_{name}"]
            for name in ("deal_script_id", "stage_id")
            if f"default_{name}" in self.env.context
        }
        if defaults:
            vals_list = [{**defaults, **vals} for vals in vals_list]
        if not self.env.user.has_group("deal_stages.group_deal_supervisor"):
            # "no script" is no salesperson's choice: the team's script applies,
            # as when none is given (an import's empty column)
            vals_list = [
                {key: value for key, value in vals.items() if value or key != "deal_script_id"}
                for vals in vals_list
            ]
        leads = super(CrmLead, self.with_context(deal_creation=DealCreation())).create(vals_list)
        return leads.with_env(self.env)

    def write(self, vals):
        self._deal_verify_engine_fields([vals])
        if "active" in vals and not vals["active"]:
            # a lost or archived deal's order must not reach the accounting
            # program or production afterwards (a deleted deal's rows go with it)
            self._deal_handoff_cancel_closed()
        if vals.get("type") == "lead":
            # a deal leaving the opportunities leaves its script: as a change
            # of script, only before its first step is passed
            self.filtered("deal_script_id")._deal_verify_script_change(False)
        rotate = self.browse()
        if "partner_id" in vals:
            rotate = self.filtered(
                lambda lead: lead.access_token and lead.partner_id.id != vals["partner_id"]
            )
        result = super().write(vals)
        if rotate:
            # the first customer's link must not show the next customer's order
            rotate._deal_rotate_portal_token()
        return result

    def copy_data(self, default=None):
        # a copy starts its own process: never the original's step proofs
        vals_list = super().copy_data(default=default)
        engine = self._deal_engine_fields()
        return [
            {name: value for name, value in vals.items() if name not in engine}
            for vals in vals_list
        ]

    # ------------------------------------------------------------
    # ENTERING A SCRIPT: creation, import, copy, (re)assignment
    # ------------------------------------------------------------

    @api.constrains("deal_script_id")
    def _check_deal_script_not_template(self):
        # a template is no process: a deal given one would leave its script
        for lead in self.filtered(lambda lead: lead.deal_script_id.is_template):
            raise ValidationError(
                self.env._(
                    "The script %(script)s is a template: the deal %(deal)s needs a script "
                    "of its team (create one from the template).",
                    script=lead.deal_script_id.display_name,
                    deal=lead.display_name,
                )
            )

    def _deal_open_stays(self, origins, date_in=None):
        creation = self.env.context.get("deal_creation")
        if isinstance(creation, DealCreation) and creation.pending:
            # the stays of the deals just created: where they start
            creation.pending = False
            late = self._deal_verify_entry(
                {lead.id: self.env["crm.deal.script.step"] for lead in self}
            )
            if late:
                normal = super(CrmLead, self - late)._deal_open_stays(origins, date_in=date_in)
                override = super(
                    CrmLead,
                    late._deal_move_context(
                        "override", note=self.env._("Created at a later step of the process.")
                    ),
                )._deal_open_stays(origins, date_in=date_in)
                return normal | override
        return super()._deal_open_stays(origins, date_in=date_in)

    def _deal_update_stays(self, before, script_assigned_now=False):
        # deals given a script (a conversion, a team or script change, the
        # script set again after clearing it) enter it as from outside
        assigned = self.filtered(
            lambda lead: lead.deal_script_id and lead.deal_script_id != before[lead.id][1]
        )
        if self._deal_current_move().skip_gate:
            # a trusted move of the engine (a migration to a new version)
            assigned = self.browse()
        late = assigned._deal_verify_entry(None) if assigned else self.browse()
        if not late:
            return super()._deal_update_stays(before, script_assigned_now=script_assigned_now)
        super(CrmLead, self - late)._deal_update_stays(
            before, script_assigned_now=script_assigned_now
        )
        return super(
            CrmLead,
            late._deal_move_context(
                "override", note=self.env._("Script assigned at a later step of the process.")
            ),
        )._deal_update_stays(before, script_assigned_now=script_assigned_now)

    def _deal_verify_entry(self, last_step_of):
        """The deals ``self`` entering their script where they stand now.

        A deal enters at the first step, or where it left the script before
        (the last step of it it stood in); not in a later step nor won. A
        supervisor or a sales administrator may (importing deals in progress
        from another system): those entries are returned, to be logged as
        overrides. Anyone else gets the gate's refusal.

        :param last_step_of: {lead id: last step reached}, or None to read
            it from the history
        :return: the deals entering late, for a user allowed to
        """
        if self.env.su:
            return self.browse()
        config = self.env["crm.deal.script"]._deal_config()
        Step = self.env["crm.deal.script.step"]
        candidates = self.filtered(
            lambda lead: (
                lead.stage_id.is_won
                or (
                    config.step_by_key.get((lead.deal_script_id.id, lead.stage_id.id))
                    and config.steps[
                        config.step_by_key[(lead.deal_script_id.id, lead.stage_id.id)]
                    ].index
                    > 0
                )
            )
        )
        if not candidates:
            return self.browse()
        if last_step_of is None:
            last_step_of = candidates._deal_last_steps(
                {lead.id: lead.deal_script_id for lead in candidates}
            )
        late, issues = self.browse(), {}
        for lead in candidates:
            __, step_ids = config.scripts.get(lead.deal_script_id.id, (False, ()))
            if not step_ids:
                continue
            last = last_step_of.get(lead.id) or Step
            allowed = step_ids.index(last.id) if last.id in step_ids else 0
            step_id = config.step_by_key.get((lead.deal_script_id.id, lead.stage_id.id))
            target = step_ids.index(step_id) if step_id else len(step_ids)
            if target > allowed:
                late |= lead
                issues[lead.id] = [self._deal_issue_order(Step.browse(step_ids[allowed]))]
        if late and not any(self.env.user.has_group(group) for group in DEAL_OVERRIDE_GROUPS):
            raise late._deal_gate_error(late[0].stage_id, issues)
        return late

    # ------------------------------------------------------------
    # PUBLIC METHODS: input checked, as RPC sends it
    # ------------------------------------------------------------

    def _deal_verify_records(self):
        """MissingError for ids that do not exist (deleted, never created)."""
        existing = self.exists()
        if len(existing) != len(self):
            raise MissingError(
                self.env._(
                    "The deal(s) %(ids)s do not exist (anymore).",
                    ids=", ".join(str(i) for i in (self - existing).ids),
                )
            )

    @api.model
    def _deal_verify_id(self, value, model, label):
        """``value`` as an existing record of ``model`` (UserError / MissingError)."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            else:
                raise UserError(
                    self.env._(
                        "“%(value)s” is not a valid %(label)s: give its id (a number).",
                        value=repr(value)[:50],
                        label=label,
                    )
                )
        record = self.env[model].browse(value)
        if not record.exists():
            raise MissingError(
                self.env._("The %(label)s %(id)s does not exist.", label=label, id=value)
            )
        return record

    def get_deal_gate_info(self, stage_id):
        self._deal_verify_records()
        stage = self._deal_verify_id(stage_id, "crm.stage", self.env._("stage"))
        return super().get_deal_gate_info(stage.id)

    def action_deal_force_stage(self, stage_id, reason):
        if not self.env.user.has_group("deal_stages.group_deal_supervisor"):
            return super().action_deal_force_stage(stage_id, reason)
        self._deal_verify_records()
        if reason is not None and not isinstance(reason, str):
            raise UserError(self.env._("The reason for moving the deal must be a text."))
        stage = self._deal_verify_id(stage_id, "crm.stage", self.env._("stage"))
        # the override skips the gate, not the pipeline
        self._deal_verify_pipeline(stage)
        return super().action_deal_force_stage(stage.id, reason)

    def _deal_lock_rows(self):
        """Serialize the changes of the deals' own records (checklist rows
        created on the first tick, numbered order changes, ticks against a
        move): a no-op UPDATE of the deal rows takes their lock, and a
        concurrent transaction doing the same fails with a serialization
        failure, which Odoo retries on fresh data (a SELECT ... FOR UPDATE
        alone would let it go on with its old snapshot, into a duplicate).
        """
        if self.ids:
            self.env.execute_query(
                SQL("UPDATE crm_lead SET write_date = write_date WHERE id IN %s", tuple(self.ids))
            )

    def action_deal_tick_check(self, check_id, done=True):
        ensure_one(self)
        self._deal_verify_records()
        self.check_access("write")
        self._deal_lock_rows()
        check = self._deal_verify_id(
            check_id, "crm.deal.script.check", self.env._("checklist item")
        )
        if not isinstance(done, (bool, int)):
            raise UserError(self.env._("Tick with true or false."))
        # the step the deal's stage stands for (as the gate judges it), not
        # a stored value
        step_id = (
            self.env["crm.deal.script"]
            ._deal_config()
            .step_by_key.get((self.deal_script_id.id, self.stage_id.id))
        )
        if check.step_id.id != step_id:
            raise UserError(self.env._("This item is not on the checklist of the deal's step."))
        return super().action_deal_tick_check(check.id, done=bool(done))

    # ------------------------------------------------------------
    # PORTAL: what the page shows
    # ------------------------------------------------------------

    def _deal_portal_values(self):
        values = super()._deal_portal_values()
        # what the customer sees: no internal deal title, no personal login
        company = self.company_id or self.env.company
        values["deal_name"] = f"#{self.id}"
        values["salesperson_email"] = self.team_id.alias_email or company.email
        values["documents"] = [
            document
            for document, attachment in zip(
                values["documents"], self.deal_portal_attachment_ids, strict=True
            )
            if attachment.type == "binary"
        ]
        return values

    # ------------------------------------------------------------
    # GUIDE, RATINGS, ENGINE MARKERS
    # ------------------------------------------------------------

    def _deal_next_step_preview(self, step):
        preview = super()._deal_next_step_preview(step)
        if preview and not self.env.user.has_group("base.group_system"):
            # server actions are administrators' records: their names stay theirs
            preview["actions"] = []
        return preview

    def rating_apply(self, rate, token=None, rating=None, feedback=None, **kwargs):
        # the customer rates from the rating page (public, or as superuser once
        # its token was checked); employees do not rate in their place
        if not (self.env.su or self.env.user._is_public()):
            raise AccessError(
                self.env._("Only the customer can rate a deal, from its rating page.")
            )
        return super().rating_apply(rate, token=token, rating=rating, feedback=feedback, **kwargs)

    def _deal_sla_notify(self, partners, make_message):
        # each person is told only about the deals they may read (a supervisor
        # of one team does not get the stalled deals of the others)
        groups = {}
        for partner in partners:
            user = partner.user_ids[:1]
            if not user:
                continue
            visible = self.with_user(user)._filtered_access("read")
            if visible:
                key = tuple(visible.ids)
                groups[key] = groups.get(key, partner.browse()) | partner
        result = None
        for lead_ids, group in groups.items():
            result = super(CrmLead, self.browse(lead_ids))._deal_sla_notify(group, make_message)
        return result

    def _deal_collected(self, method_name):
        # the collector is a Python object of the engine: a JSON value sent
        # in the context is no collector
        collector = self.env.context.get("deal_engine_collector")
        if collector is not None and not isinstance(collector, DealEngineCollector):
            return super(CrmLead, self.with_context(deal_engine_collector=None))._deal_collected(
                method_name
            )
        return super()._deal_collected(method_name)

    # ------------------------------------------------------------
    # SIDE EFFECTS: their failure never aborts the move or a document
    # ------------------------------------------------------------

    # Messages and activities fail in Python (a template that does not
    # render, an activity type of another model): caught without a savepoint,
    # which would cost queries on every move; a database error still aborts.

    def _deal_send_template(self, template, mode, outcome=None, author=None):
        # the engine's messages: the caller's default_* keys (a mail's state,
        # its recipients) stay out
        self = self.with_env(self.env(context=clean_context(self.env.context)))
        try:
            if template and template.sudo().model != self._name:
                # rendered for deal ids, a template of another model would
                # mail that model's records to the customer
                raise UserError(
                    self.env._(
                        "The message %(template)s is not a template of deals.",
                        template=template.sudo().name,
                    )
                )
            return super()._deal_send_template(template, mode, outcome=outcome, author=author)
        except psycopg2.Error:
            raise  # the transaction is broken (or must be retried): not ours to hide
        except Exception as error:  # noqa: BLE001 - reported on the deals
            self._deal_side_effect_failed(
                self.env._("customer message “%(message)s”", message=template.name), error, outcome
            )
            return self.env["mail.message"]

    def _deal_schedule_activities(self, step_by_lead, trigger, outcome, open_activities=None):
        self = self.with_env(self.env(context=clean_context(self.env.context)))
        try:
            return super()._deal_schedule_activities(
                step_by_lead, trigger, outcome, open_activities=open_activities
            )
        except psycopg2.Error:
            raise
        except Exception as error:  # noqa: BLE001 - reported on the deals
            self.browse(step_by_lead)._deal_side_effect_failed(
                self.env._("activities of the step"), error, outcome
            )
            return self.env["mail.activity"]

    def _deal_auto_advance_safely(self):
        """``_deal_auto_advance_written`` for the documents' hooks (an order
        confirmed, an invoice posted, a delivery validated, an activity done):
        a failure to move the deals is reported on them and never undoes the
        document."""
        if not self or not self.env["crm.deal.script.step"]._deal_auto_advance_step_ids():
            return self.browse()
        try:
            # the savepoint tells nobody of the activities created so far
            with deal_notify_held(self.env), self.env.cr.savepoint():
                return self._deal_auto_advance_written()
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise  # Odoo retries the whole request
        except Exception as error:  # noqa: BLE001 - reported on the deals
            self._deal_side_effect_failed(self.env._("moving the deal on by itself"), error)
            return self.browse()

    def _deal_side_effect_failed(self, what, error, outcome=None):
        """Report a side effect of the engine that failed on the deals ``self``.

        The move (or the document that triggered it) goes through. Each deal
        says what failed in its chatter; whoever configures the script (its
        escalation manager, else the team leader, else the salesperson) gets
        one activity per deal and kind of failure to repair it.
        """
        _logger.warning("Deal engine: %s failed on deals %s: %s", what, self.ids, error)
        text = self.env._(
            "Not done: %(what)s could not run (%(error)s). The person in charge of the "
            "script was asked to repair it.",
            what=what,
            error=str(error) or error.__class__.__name__,
        )
        if outcome is not None:
            for lead in self:
                outcome.skipped(lead, text)
        else:
            self._message_log_batch(bodies=dict.fromkeys(self.ids, Markup("<p>%s</p>") % text))
        summary = self.env._("Repair the deal automation: %(what)s", what=what)
        # the system reports: whoever moved the deal may not assign activities
        leads = self.sudo()
        todo = self.env["ir.model.data"]._xmlid_to_res_id("mail.mail_activity_data_todo")
        open_leads = set(
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("res_id", "in", self.ids),
                    ("summary", "=", summary),
                ]
            )
            .mapped("res_id")
        )
        vals_list = []
        for lead in leads:
            user = (
                lead.deal_script_id.sla_escalation_user_id or lead.team_id.user_id or lead.user_id
            )
            if lead.id in open_leads or not user:
                continue
            vals_list.append(
                {
                    "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                    "res_id": lead.id,
                    "activity_type_id": todo,
                    "summary": summary,
                    "note": Markup("<p>%s</p>") % text,
                    "date_deadline": fields.Date.context_today(self),
                    "user_id": user.id,
                    "automated": True,
                }
            )
        if vals_list:
            self.env["mail.activity"].sudo()._deal_engine_create(vals_list)

    # ------------------------------------------------------------
    # DEADLINE CRON: one deal that fails does not stop the others
    # ------------------------------------------------------------

    @api.model
    def _deal_sla_due_query(self, now, limit=None, lock=False):
        query = super()._deal_sla_due_query(now, limit=limit, lock=lock)
        only = self.env.context.get("deal_sla_only")
        if isinstance(only, DealSlaOnly):
            query = SQL("SELECT id FROM (%s) due WHERE id = %s", query, only.lead_id)
        return query

    @api.model
    def _deal_sla_process_batch(self, limit=None):
        kwargs = {"limit": limit} if limit else {}
        try:
            with self.env.cr.savepoint():
                return super()._deal_sla_process_batch(**kwargs)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
            raise
        except Exception as error:  # noqa: BLE001 - the batch goes on deal by deal
            _logger.warning("Deal deadlines: a batch failed (%s), deal by deal now", error)
        self.flush_model(["active", "deal_sla_next_check"])
        now = fields.Datetime.now()
        rows = self.env.execute_query(
            super()._deal_sla_due_query(now, limit=kwargs.get("limit"), lock=True)
        )
        processed = 0
        # each deal's savepoint would tell its assignees apart: the batch's
        # activities are held and told once, at its end, as for a whole batch
        with deal_notify_held(self.env):
            for (lead_id,) in rows:
                try:
                    with self.env.cr.savepoint():
                        processed += super(
                            CrmLead, self.with_context(deal_sla_only=DealSlaOnly(lead_id))
                        )._deal_sla_process_batch(limit=1)[0]
                except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                    raise
                except Exception as error:  # noqa: BLE001 - reported on the deal
                    lead = self.browse(lead_id).sudo()
                    # looked at again later, after the others: never first in line for good
                    lead.write({"deal_sla_next_check": now + DEAL_SLA_RETRY})
                    lead._deal_side_effect_failed(
                        self.env._("the step's deadline escalation"), error
                    )
                    processed += 1
        self.env["mail.activity"]._deal_notify_queued()
        return processed, len(rows) == kwargs.get("limit", len(rows) + 1)
