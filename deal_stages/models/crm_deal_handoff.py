import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL
from odoo.tools.misc import clean_context

from ..tools import handoff as handoff_tools

_logger = logging.getLogger(__name__)

HANDOFF_STATES = [
    ("pending", "Pending"),
    ("sent", "Sent"),
    ("acknowledged", "Acknowledged"),
    ("failed", "Failed"),
    ("dead", "Given up"),
    ("cancelled", "Cancelled"),
]
HANDOFF_KINDS = [
    ("order", "Order"),
    ("change", "Order change"),
]
HANDOFF_OPEN_STATES = ("pending", "sent", "failed", "dead")


class CrmDealHandoff(models.Model):
    """One hand-off of a deal to an endpoint: a row of the transactional outbox.

    Written in the transaction of the move that entered the step (a move
    rolled back sends nothing), delivered by the cron after the commit, with
    the same ``idempotency_key`` on every attempt. Users read the rows; only
    the engine writes them (no write access in the ACL; the buttons check the
    deal's access and act as the engine).
    """

    _name = "crm.deal.handoff"
    _description = "Deal Hand-off"
    # the receiver's acknowledgement (JSON-2): crm_deal_handoff_acknowledgement.py
    _inherit = ["crm.deal.handoff.acknowledgement.mixin"]
    _order = "id desc"
    _rec_name = "idempotency_key"

    lead_id = fields.Many2one(
        "crm.lead", string="Deal", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", index=True)
    step_id = fields.Many2one("crm.deal.script.step", ondelete="set null")
    endpoint_id = fields.Many2one("crm.deal.handoff.endpoint", required=True, ondelete="restrict")
    kind = fields.Selection(HANDOFF_KINDS, required=True, default="order")
    parent_id = fields.Many2one(
        "crm.deal.handoff",
        string="Original Hand-off",
        index="btree_not_null",
        ondelete="set null",
        help="The hand-off this one changes (order change) or sends again (resend).",
    )
    change_id = fields.Many2one("crm.deal.order.change", string="Order Change", ondelete="set null")
    idempotency_key = fields.Char(
        required=True,
        copy=False,
        help="Sent as the webhook-id header, the same on every attempt: the "
        "receiver stores each key once.",
    )
    payload = fields.Text(
        help="The JSON body, frozen when the hand-off was created and sent "
        "byte for byte on every attempt."
    )
    state = fields.Selection(HANDOFF_STATES, required=True, default="pending", index=True)
    attempts = fields.Integer()
    next_attempt = fields.Datetime()
    last_attempt = fields.Datetime()
    last_status = fields.Integer(string="Last HTTP Status")
    last_error = fields.Text()
    last_answer = fields.Text(help="The start of the receiver's last answer.")
    external_ref = fields.Char(
        string="Document in the Receiver", help="The receiver's id of the document it created."
    )
    date_sent = fields.Datetime(string="Delivered")
    date_acknowledged = fields.Datetime(string="Acknowledged")
    activity_id = fields.Many2one("mail.activity", ondelete="set null")

    _idempotency_key_unique = models.UniqueIndex("(idempotency_key)")
    # the cron's claim: due pending rows in order, from this index alone
    _due_index = models.Index("(next_attempt, id) WHERE state = 'pending'")

    @api.depends("lead_id", "kind", "endpoint_id")
    def _compute_display_name(self):
        kinds = dict(self._fields["kind"]._description_selection(self.env))
        for handoff in self:
            handoff.display_name = f"{handoff.lead_id.display_name} · {kinds.get(handoff.kind)}"

    # ------------------------------------------------------------
    # CREATION (the engine, in the move's transaction)
    # ------------------------------------------------------------

    @api.model
    def _create_handoffs(self, values_list, wake=True):
        """Create hand-off rows and wake the delivery cron after the commit.

        :param values_list: dicts with ``lead`` (record), ``endpoint``,
            ``step``, ``kind`` and optionally ``parent``, ``change``
        :param wake: False when the caller inserted the cron's trigger itself
            (``_wake_cron_query``, merged with a statement of its own)
        """
        if not values_list:
            return self.browse()
        # the outbox is the engine's: created whoever moved the deal, from a
        # clean context (no default_* key may forge a state or a key)
        Handoff = self.sudo().with_context(**clean_context(self.env.context))
        leads = self.env["crm.lead"].concat(*(values["lead"] for values in values_list))
        now = fields.Datetime.now()
        vals_list = []
        for values in values_list:
            values["key"] = str(uuid.uuid4())
        payloads = leads.sudo()._deal_handoff_payloads(values_list)
        for values, payload in zip(values_list, payloads, strict=True):
            lead = values["lead"]
            vals_list.append(
                {
                    "lead_id": lead.id,
                    "company_id": lead.company_id.id
                    or values["endpoint"]._deal_endpoint_settings().company_id,
                    "step_id": values["step"].id,
                    "endpoint_id": values["endpoint"].id,
                    "kind": values["kind"],
                    "parent_id": values.get("parent", self).id,
                    "change_id": values.get("change", self.env["crm.deal.order.change"]).id,
                    "idempotency_key": values["key"],
                    "payload": handoff_tools.encode_payload(payload).decode(),
                    "state": "pending",
                    "attempts": 0,
                    "next_attempt": now,
                }
            )
        handoffs = Handoff.create(vals_list)
        if wake:
            handoffs._wake_cron()
        return handoffs

    def _wake_cron(self, at=None):
        query = self._wake_cron_query(at, SQL("TRUE"))
        if query:
            self._wake_cron_notify(self.env.execute_query(query), at)

    @api.model
    def _wake_cron_query(self, at, condition):
        """The statement inserting the delivery cron's trigger at ``at`` (None:
        now) where ``condition`` (an SQL expression) holds, ``RETURNING id``;
        None without the cron. Give its rows to ``_wake_cron_notify``."""
        # cached id, no existence query: this runs in every move that hands off
        cron_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "deal_stages.ir_cron_deal_handoff", raise_if_not_found=False
        )
        if not cron_id:
            return None
        # ir.cron._trigger's work in one statement (it reads the cron first):
        # a trigger row of this transaction, seen by the cron once committed;
        # none for an archived cron unless later (Odoo skips it too)
        now = self.env.cr.now()
        at = at or now
        return SQL(
            """
            INSERT INTO ir_cron_trigger (cron_id, call_at, create_uid, create_date,
                                         write_uid, write_date)
            SELECT id, %(at)s, %(uid)s, %(now)s, %(uid)s, %(now)s
              FROM ir_cron WHERE id = %(cron_id)s AND (active OR %(at)s > %(now)s) AND %(condition)s
         RETURNING id
            """,
            at=at,
            now=now,
            uid=self.env.uid,
            cron_id=cron_id,
            condition=condition,
        )

    @api.model
    def _wake_cron_notify(self, rows, at=None):
        if rows and (at is None or at <= self.env.cr.now()):
            # wake the cron workers after the commit, as ir.cron._trigger does
            IrCron = self.env["ir.cron"].sudo()
            self.env.cr.postcommit.add(IrCron._notifydb)

    # ------------------------------------------------------------
    # DELIVERY (cron)
    # ------------------------------------------------------------

    @api.model
    def _cron_deliver(self, batch_size=handoff_tools.BATCH_SIZE):
        """Deliver the due hand-offs, batch by batch, each batch committed.

        Per batch: claim the rows (short transaction, ``FOR UPDATE SKIP
        LOCKED`` so several workers or cron threads never take the same row,
        committed at once), make the HTTP calls outside any lock and any
        transaction that holds one, then record each row's outcome (its own
        savepoint: one bad row never blocks the others).
        """
        IrCron = self.env["ir.cron"]
        while True:
            processed, more = self._deliver_batch(limit=batch_size)
            remaining = self._due_count() if more else 0
            time_left = IrCron._commit_progress(processed, remaining=remaining)
            if not processed or not remaining or time_left <= 0:
                break

    @api.model
    def _due_count(self):
        return self.env.execute_query(
            SQL(
                "SELECT count(*) FROM crm_deal_handoff WHERE state = 'pending'"
                " AND next_attempt <= %s",
                fields.Datetime.now(),
            )
        )[0][0]

    @api.model
    def _claim(self, limit):
        """Lock due rows, lease them (next attempt pushed past their timeout)
        and count the attempt. Returns the claimed rows (sudo)."""
        self.flush_model()
        now = fields.Datetime.now()
        rows = self.env.execute_query(
            SQL(
                "SELECT id FROM crm_deal_handoff WHERE state = 'pending' AND next_attempt <= %s"
                " ORDER BY next_attempt, id LIMIT %s FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
        )
        ids = [row[0] for row in rows]
        if not ids:
            return self.sudo().browse()
        self.env.execute_query(
            SQL(
                "UPDATE crm_deal_handoff h SET attempts = h.attempts + 1, last_attempt = %s,"
                " next_attempt = %s + make_interval(secs => e.timeout + %s)"
                " FROM crm_deal_handoff_endpoint e WHERE e.id = h.endpoint_id AND h.id IN %s",
                now,
                now,
                handoff_tools.LEASE_MARGIN,
                tuple(ids),
            )
        )
        handoffs = self.sudo().browse(ids)
        handoffs.invalidate_recordset(["attempts", "last_attempt", "next_attempt"])
        return handoffs

    def _deliveries(self):
        """The requests of the rows ``self``, read before the calls."""
        deliveries = []
        for handoff in self:
            endpoint = handoff.endpoint_id.sudo()
            problem = ""
            try:
                headers = endpoint._handoff_extra_headers()
            except ValueError:
                # stored before the check (or by SQL): never sent without the
                # receiver's credentials, nor with what HTTP cannot carry
                headers = {}
                problem = "The extra headers of the endpoint are not valid: fix them, then retry."
            deliveries.append(
                handoff_tools.Delivery(
                    handoff_id=handoff.id,
                    url=endpoint.url,
                    key=handoff.idempotency_key,
                    body=(handoff.payload or "{}").encode(),
                    secrets=tuple(s for s in (endpoint.secret, endpoint.secret_previous) if s),
                    headers=headers,
                    timeout=endpoint.timeout or 10,
                    problem=problem,
                )
            )
        return deliveries

    @api.model
    def _deliver_batch(self, limit=handoff_tools.BATCH_SIZE):
        """Claim, send and record one batch.

        :return: (rows processed, whether more may be due)
        """
        handoffs = self._claim(limit)
        if not handoffs:
            return 0, False
        deliveries = handoffs._deliveries()
        # the claim is committed before any call: no lock is held while the
        # receivers answer, and a crash leaves the rows leased, not lost
        self.env["ir.cron"]._commit_progress(0)
        outcomes = self._send_all(deliveries)
        handoffs._record_outcomes(outcomes)
        return len(handoffs), len(handoffs) == limit

    @api.model
    def _send_all(self, deliveries):
        """{handoff id: Outcome}; the calls of a batch run side by side."""
        if len(deliveries) == 1:
            return {deliveries[0].handoff_id: handoff_tools.deliver(deliveries[0])}
        with ThreadPoolExecutor(max_workers=min(handoff_tools.THREADS, len(deliveries))) as pool:
            results = pool.map(handoff_tools.deliver, deliveries)
            return {
                delivery.handoff_id: outcome
                for delivery, outcome in zip(deliveries, results, strict=True)
            }

    def _record_outcomes(self, outcomes):
        """Write what each attempt gave: the batch at once (one statement per
        column set), each row in its own savepoint if the batch fails."""
        now = fields.Datetime.now()
        # rows changed meanwhile (acknowledged over JSON-2 while the request
        # was answered, cancelled) keep their state: locked and re-read; rows
        # gone with their deal (deleted meanwhile) are left out
        rows = self.env.execute_query(
            SQL("SELECT id FROM crm_deal_handoff WHERE id IN %s FOR UPDATE", tuple(self.ids))
        )
        self.invalidate_recordset()
        present = self.browse([row[0] for row in rows])
        todo = present.filtered(lambda h: h.state == "pending" and h.id in outcomes)
        try:
            with self.env.cr.savepoint():
                for handoff in todo:
                    handoff._record_outcome(outcomes[handoff.id], now)
            recorded = todo
        except Exception:  # noqa: BLE001 - isolated below, row by row
            self.env.invalidate_all()
            recorded = self.browse()
            for handoff in todo:
                try:
                    with self.env.cr.savepoint():
                        handoff._record_outcome(outcomes[handoff.id], now)
                except Exception:
                    # this row stays leased and is tried again later; the
                    # others are recorded
                    _logger.exception("Hand-off %s: outcome not recorded", handoff.id)
                    self.env.invalidate_all()
                    continue
                recorded |= handoff
        problems = recorded.filtered(lambda h: h.state in handoff_tools.PROBLEM_STATES)
        problems._schedule_problem_activities()
        # the deal's chatter tells where its hand-off ended, not each retry
        recorded.filtered(lambda h: h.state != "pending")._log_on_deals()
        recorded.filtered(lambda h: h.state == "acknowledged")._after_acknowledged()
        # the retries come back when due, not at the cron's next interval
        retries = recorded.filtered(lambda h: h.state == "pending" and h.next_attempt)
        if retries:
            retries._wake_cron(at=min(retries.mapped("next_attempt")))

    def _record_outcome(self, outcome, now):
        self.ensure_one()
        values = {
            "last_status": outcome.status,
            "last_answer": outcome.answer or False,
            "last_error": outcome.error or False,
        }
        if outcome.kind == handoff_tools.OUTCOME_ACKNOWLEDGED:
            values.update(
                state="acknowledged",
                external_ref=outcome.external_ref or self.external_ref or False,
                date_sent=self.date_sent or now,
                date_acknowledged=now,
                next_attempt=False,
            )
        elif outcome.kind == handoff_tools.OUTCOME_SENT:
            values.update(state="sent", date_sent=self.date_sent or now, next_attempt=False)
        elif outcome.kind == handoff_tools.OUTCOME_RETRY:
            endpoint = self.endpoint_id
            if self.attempts >= endpoint.max_attempts:
                values.update(state="dead", next_attempt=False)
            else:
                values["next_attempt"] = handoff_tools.next_attempt(
                    now, self.attempts, endpoint._handoff_delays(), outcome.retry_after
                )
        else:
            values.update(state="failed", next_attempt=False)
        self.write(values)

    # ------------------------------------------------------------
    # PEOPLE: activities, notes
    # ------------------------------------------------------------

    def _schedule_problem_activities(self):
        """One activity per failed or given-up hand-off for the endpoint's
        responsible (else the salesperson), on the deal; none twice."""
        todo = self.env.ref("mail.mail_activity_data_todo", raise_if_not_found=False)
        handoffs = self.filtered(lambda h: not h.activity_id)
        if not (handoffs and todo):
            return
        model_id = self.env["ir.model"]._get_id("crm.lead")
        today = fields.Date.context_today(self)
        vals_list, owners = [], []
        for handoff in handoffs:
            user = handoff.endpoint_id.user_id or handoff.lead_id.user_id
            if not user:
                continue
            vals_list.append(
                {
                    "res_model_id": model_id,
                    "res_id": handoff.lead_id.id,
                    "activity_type_id": todo.id,
                    "user_id": user.id,
                    "date_deadline": today,
                    "summary": self.env._(
                        "Hand-off to %(endpoint)s: %(state)s",
                        endpoint=handoff.endpoint_id.name,
                        state=handoff._state_label(),
                    ),
                    "note": Markup("<p>%s</p>")
                    % (handoff.last_error or self.env._("No answer from the receiver.")),
                }
            )
            owners.append(handoff)
        if not vals_list:
            return
        # the engine's activity: created whoever (or whatever cron) saw the failure
        activities = (
            self.env["mail.activity"]
            .sudo()
            .with_context(**clean_context(self.env.context))
            ._deal_engine_create(vals_list)
        )
        for handoff, activity in zip(owners, activities, strict=True):
            handoff.activity_id = activity

    def _close_activities(self, feedback):
        activities = self.sudo().activity_id.exists()
        if activities:
            activities.action_feedback(feedback=feedback)

    def _state_label(self):
        return dict(self._fields["state"]._description_selection(self.env))[self.state]

    def _log_on_deals(self, author_note=None):
        """One internal note per deal, naming what happened to its hand-offs."""
        lines = {}
        for handoff in self:
            text = self.env._(
                "Hand-off to %(endpoint)s (%(kind)s): %(state)s",
                endpoint=handoff.endpoint_id.name,
                kind=dict(self._fields["kind"]._description_selection(self.env))[handoff.kind],
                state=handoff._state_label(),
            )
            details = []
            if handoff.last_status:
                details.append(f"HTTP {handoff.last_status}")
            if handoff.external_ref:
                details.append(self.env._("document %(ref)s", ref=handoff.external_ref))
            if handoff.state in handoff_tools.PROBLEM_STATES and handoff.last_error:
                details.append(handoff.last_error[:200])
            if author_note:
                details.append(author_note)
            if details:
                text = f"{text} ({'; '.join(details)})"
            lines.setdefault(handoff.lead_id, []).append(text)
        bodies = {
            lead.id: Markup("<ul>%s</ul>")
            % Markup().join(Markup("<li>%s</li>") % line for line in texts)
            for lead, texts in lines.items()
        }
        if bodies:
            self.env["crm.lead"].sudo().browse(list(bodies))._message_log_batch(bodies=bodies)

    # ------------------------------------------------------------
    # BUTTONS (on the deal)
    # ------------------------------------------------------------

    def _check_deal_writable(self):
        """Buttons act as the engine for whoever may edit the deals."""
        if not self.env.su:
            self.lead_id.check_access("write")

    def _check_deals_open(self):
        """The order of a lost or archived deal is not sent (its open
        hand-offs were cancelled, see crm.lead._deal_handoff_cancel_closed)."""
        closed = self.sudo().lead_id.filtered(lambda lead: not lead.active)
        if closed:
            raise UserError(
                self.env._(
                    "The deal %(deal)s is lost or archived: restore it before sending its "
                    "order again.",
                    deal=closed[0].display_name,
                )
            )

    def action_retry(self):
        """Send again now, with the same key (the receiver deduplicates)."""
        self._check_deal_writable()
        self._check_deals_open()
        retried = self.sudo().filtered(lambda h: h.state in HANDOFF_OPEN_STATES)
        if not retried:
            raise UserError(self.env._("Only open hand-offs can be sent again."))
        retried.write({"state": "pending", "attempts": 0, "next_attempt": fields.Datetime.now()})
        retried._log_on_deals(
            author_note=self.env._("sent again by %(user)s", user=self.env.user.name)
        )
        retried._wake_cron()
        return True

    def action_cancel(self):
        """Stop sending (an acknowledged hand-off stays acknowledged)."""
        self._check_deal_writable()
        cancelled = self.sudo().filtered(lambda h: h.state in HANDOFF_OPEN_STATES)
        if not cancelled:
            raise UserError(self.env._("Only open hand-offs can be cancelled."))
        cancelled.write({"state": "cancelled", "next_attempt": False})
        cancelled._close_activities(self.env._("The hand-off was cancelled."))
        cancelled._log_on_deals(
            author_note=self.env._("cancelled by %(user)s", user=self.env.user.name)
        )
        return True

    def action_resend(self):
        """Send as a new hand-off (new key, the deal's data of now): for a
        receiver that lost or refused the first one. Supervisors only."""
        if not self.env.user.has_group("deal_stages.group_deal_supervisor"):
            raise AccessError(self.env._("Only supervisors may send a hand-off as a new one."))
        self._check_deal_writable()
        self._check_deals_open()
        originals = self.sudo()
        if any(h.state == "pending" for h in originals):
            raise UserError(
                self.env._("This hand-off is still being sent: cancel it first or wait.")
            )
        new = self._create_handoffs(
            [
                {
                    "lead": original.lead_id,
                    "endpoint": original.endpoint_id,
                    "step": original.step_id,
                    "kind": original.kind,
                    # a change names the order it changes (the payload's
                    # "original"), also when it is sent again
                    "parent": original.parent_id
                    if original.kind == "change" and original.parent_id
                    else original,
                    "change": original.change_id,
                }
                for original in originals
            ]
        )
        # the old ones are replaced: only the new ones count for the gate
        superseded = originals.filtered(lambda h: h.state != "acknowledged")
        superseded.write({"state": "cancelled", "next_attempt": False})
        superseded._close_activities(self.env._("Sent again as a new hand-off."))
        new._log_on_deals(
            author_note=self.env._("sent as new by %(user)s", user=self.env.user.name)
        )
        return True
