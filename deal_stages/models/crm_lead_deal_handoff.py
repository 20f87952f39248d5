import logging

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..tools import ensure_one
from ..tools import handoff as handoff_tools

_logger = logging.getLogger(__name__)

# the deal's summary of its hand-offs, worst first (cancelled ones do not count)
DEAL_HANDOFF_STATES = [
    ("dead", "Hand-off given up"),
    ("failed", "Hand-off failed"),
    ("pending", "Hand-off pending"),
    ("sent", "Hand-off sent"),
    ("acknowledged", "Handed off"),
]


class CrmLeadDealHandoff(models.AbstractModel):
    """Hand-off of the deal to the accounting program or production: the
    rows the steps' entry writes (``crm.deal.handoff``), the gate reason, the
    order changes handed off after them, the status on the deal."""

    _name = "crm.lead.deal.handoff"
    _description = "Deal Hand-off (deal feature)"

    deal_handoff_ids = fields.One2many("crm.deal.handoff", "lead_id", string="Hand-offs")
    deal_handoff_state = fields.Selection(
        DEAL_HANDOFF_STATES,
        string="Hand-off",
        compute="_compute_deal_handoff_state",
        store=True,
        index="btree_not_null",
        help="Where the deal's hand-offs to the accounting program or production "
        "stand, the worst first. Written by the hand-offs only. An auto-advance "
        "condition such as [('deal_handoff_state', '=', 'acknowledged')] moves "
        "the deal on once it is handed off.",
    )

    @api.depends("deal_handoff_ids.state")
    def _compute_deal_handoff_state(self):
        order = [state for state, __ in DEAL_HANDOFF_STATES]
        for lead in self:
            # every hand-off counts, whoever reads the deal (one query per batch)
            states = set(lead.sudo().deal_handoff_ids.mapped("state"))
            lead.deal_handoff_state = next((state for state in order if state in states), False)

    @api.model
    def _check_field_access(self, field, operation):
        # the status is the hand-offs' (a stored compute): over RPC nobody
        # may write it to fake an acknowledgement
        if field.name == "deal_handoff_state" and operation == "write" and not self.env.su:
            raise AccessError(
                self.env._(
                    "The hand-off status of a deal is set by its hand-offs: it cannot be edited."
                )
            )
        return super()._check_field_access(field, operation)

    # ------------------------------------------------------------
    # ENGINE: ENTRY (crm.deal.stage.log._process_entries)
    # ------------------------------------------------------------

    def _deal_handoff_targets(self, step_by_lead):
        """{lead id: step} of the deals entering a step that hands off (the
        scripts' structure is cached: no query)."""
        config = self.env["crm.deal.script"]._deal_config()
        return {
            lead_id: step
            for lead_id, step in step_by_lead.items()
            if (config.steps.get(step.id) and config.steps[step.id].handoff_endpoint_id)
        }

    def _deal_handoff_create(self, step_by_lead, report):
        """Write the hand-offs of the steps the deals ``self`` entered, in the
        transaction of the move. A deal that already handed its order off at
        that step (and did not cancel it) gets none again: its later order
        changes are handed off as changes."""
        config = self.env["crm.deal.script"]._deal_config()
        targets = self._deal_handoff_targets(step_by_lead)
        if not targets:
            return self.env["crm.deal.handoff"]
        endpoints = self.env["crm.deal.handoff.endpoint"].sudo()
        # the deals' hand-offs (the one created below joins them in the cache,
        # so the deal's status is computed without reading them again), what
        # the payloads read and the cron's trigger: one statement
        handoffs = self.browse(list(targets))._deal_handoff_prefetch(targets)
        done = {
            (handoff.lead_id.id, handoff.step_id.id)
            for handoff in handoffs
            if handoff.kind == "order" and handoff.state != "cancelled"
        }
        values_list = []
        for lead in self.browse(list(targets)):
            step = targets[lead.id]
            if (lead.id, step.id) in done:
                continue
            endpoint = endpoints.browse(config.steps[step.id].handoff_endpoint_id)
            # the endpoint's settings are cached: no read of it in the move
            settings = endpoint._deal_endpoint_settings()
            if not settings.active:
                report.skipped(
                    lead,
                    self.env._(
                        "Hand-off to %(endpoint)s: the endpoint is archived.",
                        endpoint=settings.name,
                    ),
                )
                continue
            if not self._deal_handoff_same_company(lead, settings):
                # a script shared by companies: a deal's order never goes to
                # another company's accounting program
                report.skipped(
                    lead,
                    self.env._(
                        "Hand-off to %(endpoint)s: the endpoint belongs to another company "
                        "than the deal (%(company)s).",
                        endpoint=settings.name,
                        company=lead.company_id.name,
                    ),
                )
                continue
            values_list.append({"lead": lead, "endpoint": endpoint, "step": step, "kind": "order"})
        # a side effect never aborts the move: an error building the payloads
        # (before anything is written, so no savepoint in every move) is
        # reported on the deals; a database error still rolls the move back
        try:
            handoffs = self.env["crm.deal.handoff"]._create_handoffs(values_list, wake=False)
        except psycopg2.Error:
            raise
        except Exception as error:
            _logger.exception("Hand-offs not queued for deals %s", self.ids)
            for values in values_list:
                report.skipped(
                    values["lead"],
                    self.env._(
                        "Hand-off to %(endpoint)s not queued: %(error)s",
                        endpoint=values["endpoint"]._deal_endpoint_settings().name,
                        error=error,
                    ),
                )
            return self.env["crm.deal.handoff"]
        for handoff in handoffs:
            report.done(
                handoff.lead_id,
                self.env._(
                    "Hand-off to %(endpoint)s queued.",
                    endpoint=handoff.endpoint_id._deal_endpoint_settings().name,
                ),
            )
        return handoffs

    def _deal_handoff_prefetch(self, targets):
        """The hand-offs of the deals ``self`` (sudo), read in one statement
        with what their payloads read and the delivery cron's trigger.

        The statement fills the cache as the ORM reads would, in their order:
        the deals' hand-offs (``deal_handoff_ids`` with each row's deal, step,
        kind and state), their order changes (``deal_change_ids``) and their
        customers' active child contacts with their type (``child_ids``, the
        invoice and delivery addresses) where the endpoint sends them. The
        trigger is inserted where a deal enters, by an active endpoint, a step
        it has no hand-off of yet: the cron wakes after the commit to the rows
        created next (for nothing when writing them fails, which the deal
        reports).

        :param targets: {lead id: step} of the deals ``self`` (see
            ``_deal_handoff_targets``)
        """
        leads = self.sudo()
        config = self.env["crm.deal.script"]._deal_config()
        endpoints = self.env["crm.deal.handoff.endpoint"].sudo()
        settings = {
            lead.id: endpoints.browse(
                config.steps[targets[lead.id].id].handoff_endpoint_id
            )._deal_endpoint_settings()
            for lead in leads
        }
        with_changes = [lead.id for lead in leads if settings[lead.id].send_changes]
        customers = leads.filtered(lambda lead: settings[lead.id].send_customer)
        partner_ids = customers.partner_id.commercial_partner_id.ids
        woken = [
            lead.id
            for lead in leads
            if settings[lead.id].active and self._deal_handoff_same_company(lead, settings[lead.id])
        ]
        Handoff, Change = self.env["crm.deal.handoff"].sudo(), self.env["crm.deal.order.change"]
        Partner = self.env["res.partner"].sudo()
        Handoff.flush_model(["lead_id", "step_id", "kind", "state"])
        Change.flush_model(["lead_id", "sequence_number"])
        Partner.flush_model(["parent_id", "active", "type", "complete_name"])
        wake = self._deal_handoff_wake_query(targets, woken) if woken else None
        # each part in the order of its model (rank): as the ORM fills the cache
        rows = self.env.execute_query(
            SQL(
                """
                WITH woken AS (%(wake)s)
                SELECT 'handoff', lead_id, id, step_id, kind, state,
                       row_number() OVER (ORDER BY id DESC)
                  FROM crm_deal_handoff WHERE lead_id = ANY(%(leads)s)
                 UNION ALL
                SELECT 'change', lead_id, id, NULL, NULL, NULL,
                       row_number() OVER (ORDER BY sequence_number DESC, id DESC)
                  FROM crm_deal_order_change WHERE lead_id = ANY(%(changes)s)
                 UNION ALL
                SELECT 'child', parent_id, id, NULL, type, NULL,
                       row_number() OVER (ORDER BY complete_name, id DESC)
                  FROM res_partner WHERE active AND parent_id = ANY(%(partners)s)
                 UNION ALL
                SELECT 'woken', NULL, id, NULL, NULL, NULL, 0 FROM woken
                """,
                wake=wake or SQL("SELECT NULL::int AS id WHERE FALSE"),
                leads=leads.ids,
                changes=with_changes,
                partners=partner_ids,
            )
        )
        rows.sort(key=lambda row: row[6])
        parts = {"handoff": {}, "change": {}, "child": {}}
        for tag, owner_id, row_id, step_id, kind, state, _rank in rows:
            if tag != "woken":
                parts[tag].setdefault(owner_id, []).append((row_id, step_id, kind, state))
        if wake:
            Handoff._wake_cron_notify([row for row in rows if row[0] == "woken"])
        return leads._deal_handoff_cache(parts, with_changes, partner_ids)

    @api.model
    def _deal_handoff_same_company(self, lead, settings):
        """Whether the deal ``lead`` may hand off to the endpoint of
        ``settings`` (``HandoffEndpointConfig``): a deal of a company only to
        an endpoint of that company."""
        return not lead.company_id or lead.company_id.id == settings.company_id

    @api.model
    def _deal_handoff_wake_query(self, targets, lead_ids):
        """The insert of the delivery cron's trigger where one of the deals
        ``lead_ids`` has no hand-off yet of the step it enters (``targets``)."""
        return self.env["crm.deal.handoff"]._wake_cron_query(
            None,
            SQL(
                """EXISTS (
                    SELECT FROM unnest(%(leads)s::int[], %(steps)s::int[]) t(lead_id, step_id)
                     WHERE NOT EXISTS (
                        SELECT FROM crm_deal_handoff h
                         WHERE h.lead_id = t.lead_id AND h.step_id = t.step_id
                           AND h.kind = 'order' AND h.state != 'cancelled'))""",
                leads=lead_ids,
                steps=[targets[lead_id].id for lead_id in lead_ids],
            ),
        )

    def _deal_handoff_cache(self, parts, with_changes, partner_ids):
        """Put in the cache what ``_deal_handoff_prefetch`` read for the deals
        ``self`` (sudo) and return their hand-offs.

        :param parts: {"handoff" | "change" | "child": {owner id: [(id, step
            id, kind or type, state)]}}, each list in its model's order
        """
        Handoff, Partner = self.env["crm.deal.handoff"], self.env["res.partner"]
        # (lead id, hand-off id, step id, kind, state), as the deals list them
        handoff_rows = [
            (lead_id, *row) for lead_id in self.ids for row in parts["handoff"].get(lead_id, ())
        ]
        handoffs = Handoff.browse(row[1] for row in handoff_rows)
        for fname, column in (("lead_id", 0), ("step_id", 2), ("kind", 3), ("state", 4)):
            handoffs._fields[fname]._insert_cache(handoffs, [row[column] for row in handoff_rows])
        for records, fname, part in (
            (self, "deal_handoff_ids", "handoff"),
            (self.browse(with_changes), "deal_change_ids", "change"),
            (Partner.browse(partner_ids), "child_ids", "child"),
        ):
            records._fields[fname]._insert_cache(
                records,
                [tuple(row[0] for row in parts[part].get(rid, ())) for rid in records.ids],
            )
        children = [row for rows in parts["child"].values() for row in rows]
        Partner._fields["type"]._insert_cache(
            Partner.browse(row[0] for row in children), [row[2] for row in children]
        )
        return handoffs

    def _deal_handoff_order_change(self, change, report=None):
        """An order change after a hand-off: hand the change off too, to the
        same endpoint, referencing the first hand-off.

        :param report: ``DealOutcome`` of the change: says on the deal whether
            the change was queued or why not
        """
        self.ensure_one()
        first = (
            self.env["crm.deal.handoff"]
            .sudo()
            .search(
                [("lead_id", "=", self.id), ("kind", "=", "order"), ("state", "!=", "cancelled")],
                order="id desc",
                limit=1,
            )
        )
        if not first:
            return first
        endpoint_name = first.endpoint_id._deal_endpoint_settings().name
        if not first.endpoint_id.active:
            # the receiver has the order, not this change: a person must know
            if report is not None:
                report.skipped(
                    self,
                    self.env._(
                        "Hand-off to %(endpoint)s: the endpoint is archived.",
                        endpoint=endpoint_name,
                    ),
                )
            return first.browse()
        # as at the step's entry: an error building the payload (before
        # anything is written) never undoes the recorded change
        try:
            handoffs = self.env["crm.deal.handoff"]._create_handoffs(
                [
                    {
                        "lead": self,
                        "endpoint": first.endpoint_id,
                        "step": first.step_id,
                        "kind": "change",
                        "parent": first,
                        "change": change,
                    }
                ]
            )
        except psycopg2.Error:
            raise
        except Exception as error:
            if report is None:
                raise
            _logger.exception("Hand-off of the order change %s not queued", change.id)
            report.skipped(
                self,
                self.env._(
                    "Hand-off to %(endpoint)s not queued: %(error)s",
                    endpoint=endpoint_name,
                    error=error,
                ),
            )
            return first.browse()
        if report is not None:
            report.done(
                self, self.env._("Hand-off to %(endpoint)s queued.", endpoint=endpoint_name)
            )
        return handoffs

    # ------------------------------------------------------------
    # GATE (crm.lead._deal_requirement_issues)
    # ------------------------------------------------------------

    def _deal_handoff_issues(self, step_by_lead, step_config, issues):
        """Add to ``issues`` the deals leaving a step whose hand-off is
        required and not acknowledged: one query, only when such steps are
        left."""
        required = {
            step_id: step.handoff_endpoint_id
            for step_id, step in step_config.items()
            if step and step.handoff_required and step.handoff_endpoint_id
        }
        if not required:
            return
        leaving = self.filtered(lambda lead: step_by_lead[lead.id].id in required)
        if not leaving:
            return
        # the gate judges every hand-off, whoever moves the deal
        handoffs = (
            self.env["crm.deal.handoff"]
            .sudo()
            .search_fetch(
                [
                    ("lead_id", "in", leaving.ids),
                    ("step_id", "in", list(required)),
                    ("state", "!=", "cancelled"),
                ],
                ["lead_id", "step_id", "state", "endpoint_id"],
            )
        )
        states = {}
        for handoff in handoffs:
            if handoff.step_id == step_by_lead[handoff.lead_id.id]:
                states.setdefault(handoff.lead_id.id, set()).add(handoff.state)
        endpoints = self.env["crm.deal.handoff.endpoint"].sudo()
        labels = dict(
            self.env["crm.deal.handoff"]._fields["state"]._description_selection(self.env)
        )
        for lead in leaving:
            endpoint = endpoints.browse(required[step_by_lead[lead.id].id])
            lead_states = states.get(lead.id)
            if not lead_states:
                message = self.env._(
                    "Hand the order off to %(endpoint)s: no hand-off was sent.",
                    endpoint=endpoint.name,
                )
            elif lead_states != {"acknowledged"}:
                waiting = [
                    labels[s] for s in ("dead", "failed", "pending", "sent") if s in lead_states
                ]
                message = self.env._(
                    "Wait until %(endpoint)s acknowledges the hand-off (now: %(state)s).",
                    endpoint=endpoint.name,
                    state=", ".join(waiting),
                )
            else:
                continue
            issues.setdefault(lead.id, []).append({"kind": "handoff", "message": message})

    # ------------------------------------------------------------
    # PAYLOAD (frozen when the hand-off is created)
    # ------------------------------------------------------------

    def _deal_handoff_payloads(self, values_list):
        """The JSON bodies of the hand-offs to create, in ``values_list``'s
        order (see ``crm.deal.handoff._create_handoffs``). Bridges add their
        documents (deal_stages_sale: the confirmed quotation's lines)."""
        now = fields.Datetime.now()
        # the steps' names are cached (no read of the step in the move)
        step_names = self.env["crm.deal.script"]._deal_step_names()
        payloads = []
        for values in values_list:
            lead = values["lead"]
            endpoint = values["endpoint"]._deal_endpoint_settings()
            company = lead.company_id or lead.company_id.browse(endpoint.company_id)
            payload = {
                "schema": handoff_tools.SCHEMA_VERSION,
                "event": values["kind"],
                "idempotency_key": values["key"],
                "created_at": now.isoformat() + "Z",
                "company": {"name": company.name, "vat": company.vat or None},
                "deal": {
                    "id": lead.id,
                    "name": lead.name,
                    "step": step_names.get(values["step"].id) or values["step"].name or None,
                    "stage": lead.stage_id.name or None,
                    "salesperson": {
                        "name": lead.user_id.name or None,
                        "email": lead.user_id.email or None,
                    },
                    "team": lead.team_id.name or None,
                },
            }
            parent = values.get("parent")
            if parent:
                payload["original"] = {
                    "idempotency_key": parent.idempotency_key,
                    "external_ref": parent.external_ref or None,
                }
            change = values.get("change")
            if change:
                payload["change"] = lead._deal_handoff_change_data(change)
            if endpoint.send_customer:
                payload["customer"] = lead._deal_handoff_customer_data()
            if endpoint.send_amount:
                payload["amount"] = {
                    "expected_revenue": lead.expected_revenue,
                    "currency": lead.company_currency.name or None,
                }
            if endpoint.send_changes:
                payload["changes"] = [
                    lead._deal_handoff_change_data(c)
                    for c in lead.deal_change_ids.sorted(lambda c: (c.date, c.id))
                ]
            payloads.append(payload)
        return payloads

    def _deal_handoff_change_data(self, change):
        return {
            "name": change.name,
            "type": change.change_type,
            "amount_delta": change.amount_delta,
            "description": change.description or None,
            "date": change.date.isoformat() if change.date else None,
        }

    def _deal_handoff_customer_data(self):
        self.ensure_one()
        partner = self.partner_id.commercial_partner_id
        if not partner:
            # a deal without a contact: what the salesperson typed on it
            return {
                "name": self.partner_name or self.contact_name or None,
                "is_company": bool(self.partner_name),
                "vat": None,
                "email": self.email_from or None,
                "phone": self.phone or None,
                "addresses": {"main": self._deal_handoff_address(self)},
            }

        def child(kind):
            return partner.child_ids.filtered(lambda c, kind=kind: c.type == kind)[:1] or partner

        return {
            "id": partner.id,
            "name": partner.name,
            "is_company": partner.is_company,
            "vat": partner.vat or None,
            "company_registry": partner.company_registry or None,
            "ref": partner.ref or None,
            "email": partner.email or None,
            "phone": partner.phone or None,
            "contact": self.partner_id.name if self.partner_id != partner else None,
            "addresses": {
                "main": self._deal_handoff_address(partner),
                "invoice": self._deal_handoff_address(child("invoice")),
                "delivery": self._deal_handoff_address(child("delivery")),
            },
        }

    @api.model
    def _deal_handoff_address(self, record):
        return {
            "street": record.street or None,
            "street2": record.street2 or None,
            "zip": record.zip or None,
            "city": record.city or None,
            "state": record.state_id.name or None,
            "country_code": record.country_id.code or None,
        }

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_view_deal_handoffs(self):
        ensure_one(self)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "deal_stages.crm_deal_handoff_action"
        )
        action["domain"] = [("lead_id", "=", self.id)]
        action["context"] = {"create": False}
        return action

    def _deal_handoff_cancel_closed(self):
        """Cancel the hand-offs of the deals not delivered yet (pending, failed,
        given up): the order of a lost or archived deal is not sent.

        A hand-off already sent stays as it is: the receiver has it (the note
        says so). Restoring the deal does not bring the cancelled ones back:
        its step's entry writes a new hand-off (new key, the deal as it is
        then) where the step hands off.
        """
        # the outbox is the engine's, whoever closes the deal
        handoffs = (
            self.env["crm.deal.handoff"]
            .sudo()
            .search([("lead_id", "in", self.ids), ("state", "in", ("pending", "failed", "dead"))])
        )
        if not handoffs:
            return handoffs
        handoffs.write({"state": "cancelled", "next_attempt": False})
        handoffs._close_activities(self.env._("The deal was lost or archived."))
        handoffs._log_on_deals(author_note=self.env._("cancelled: the deal was lost or archived"))
        return handoffs
