"""Base classes of the deal_stages tests and of its bridges' tests.

``DealStagesCommon`` (the three-step test script) is the root; each feature
adds its configuration in its own base (``DealSlaCommon``, ``DealGateCommon``,
``DealMessageCommon``, ``DealExceptionCommon``, ``DealVersionCommon``,
``DealAttackCommon`` for the attacks, ``DealHandoffCommon`` with a real
receiver); ``DealB2BCommon`` runs the shipped B2B template for the bridges
(sale, account, stock).
"""

import importlib.util
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo import Command, fields
from odoo.tests.common import _super_send
from odoo.tools import mute_logger

from odoo.addons.base.models.ir_cron import IrCron
from odoo.addons.crm.tests.common import TestCrmCommon
from odoo.addons.deal_stages.tools import handoff as handoff_tools
from odoo.addons.mail.tests.common import mail_new_test_user


class DealStagesCommon(TestCrmCommon):
    """Base for deal_stages tests: crm's users, teams and stages, plus a script.

    Users (from crm/sales_team): ``user_sales_salesman`` (own documents),
    ``user_sales_leads`` (all documents), ``user_sales_manager`` (administrator,
    leader of ``sales_team_1``).

    ``script`` runs ``sales_team_1`` through three steps:

    ====  ==================  =================================================
    step  stage               entry activities
    ====  ==================  =================================================
    1     stage_team1_1       "Send the contract" (1 day, salesperson, once),
                              "Get the signed copy" (3 working days, leader, once)
    2     stage_team1_2       "Issue the invoice" (today, salesperson, always)
    3     stage_prepayment    "Check the prepayment" (3 working days,
                              user_sales_leads, always)
    ====  ==================  =================================================
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.activity_type_todo = cls.env.ref("mail.mail_activity_data_todo")
        cls.activity_type_upload = cls.env.ref("mail.mail_activity_data_upload_document")
        cls.stage_prepayment = cls.env["crm.stage"].create(
            {"name": "Prepayment", "sequence": 6, "team_ids": [cls.sales_team_1.id]}
        )
        cls.script = cls.env["crm.deal.script"].create(
            {
                "name": "Test process",
                "team_ids": [cls.sales_team_1.id],
                "step_ids": [
                    Command.create(
                        {
                            "sequence": 1,
                            "stage_id": cls.stage_team1_1.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "sequence": 1,
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Send the contract",
                                        "deadline_days": 1,
                                    }
                                ),
                                Command.create(
                                    {
                                        "sequence": 2,
                                        "activity_type_id": cls.activity_type_upload.id,
                                        "summary": "Get the signed copy",
                                        "deadline_days": 3,
                                        "deadline_working_days": True,
                                        "assign_to": "team_leader",
                                    }
                                ),
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "sequence": 2,
                            "stage_id": cls.stage_team1_2.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Issue the invoice",
                                        "reentry": "always",
                                    }
                                ),
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "sequence": 3,
                            "stage_id": cls.stage_prepayment.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Check the prepayment",
                                        "deadline_days": 3,
                                        "deadline_working_days": True,
                                        "assign_to": "user",
                                        "user_id": cls.user_sales_leads.id,
                                        "reentry": "always",
                                    }
                                ),
                            ],
                        }
                    ),
                ],
            }
        )
        cls.step_1, cls.step_2, cls.step_3 = cls.script.step_ids.sorted("sequence")
        # deals may go back to any earlier step (the gates' tests narrow this)
        cls.step_2.back_step_ids = cls.step_1
        cls.step_3.back_step_ids = cls.step_1 + cls.step_2

    @classmethod
    def _setup_team_b(cls):
        """A second team (``sales_team_2``, "Team B") following the script, led
        by ``user_team_leader``, who is only in the supervisor group."""
        cls.user_team_leader = mail_new_test_user(
            cls.env,
            login="user_team_leader",
            name="Tina Team Leader",
            email="tina@test.example.com",
            company_id=cls.company_main.id,
            groups="deal_stages.group_deal_supervisor",
        )
        cls.sales_team_2 = cls.env["crm.team"].create(
            {"name": "Team B", "user_id": cls.user_team_leader.id, "company_id": False}
        )
        cls.script.step_ids.stage_id.team_ids = [Command.link(cls.sales_team_2.id)]
        cls.script.team_ids = [Command.link(cls.sales_team_2.id)]

    def _create_deals(self, count=1, **values):
        """Opportunities of ``sales_team_1`` owned by the salesperson."""
        return self.env["crm.lead"].create(self._deal_vals_list(count, values))

    def _create_deals_in_step(self, stage, count=1, **values):
        """Deals put straight in ``stage`` by the system (as an import of deals
        in progress): salespeople create deals at the first step only."""
        vals_list = self._deal_vals_list(count, dict(values, stage_id=stage.id))
        return self.env["crm.lead"].sudo().create(vals_list).sudo(False)

    def _deal_vals_list(self, count, values):
        return [
            {
                "name": f"Deal {index}",
                "type": "opportunity",
                "team_id": self.sales_team_1.id,
                "user_id": self.user_sales_salesman.id,
                **values,
            }
            for index in range(count)
        ]

    def _count_queries(self, operation, flush=True):
        """``(queries, result)`` of ``operation()`` run on empty caches: what a
        batch costs, to compare a small and a large batch (``flush``: the
        writes it leaves pending are counted too)."""
        self.env.flush_all()
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        result = operation()
        if flush:
            self.env.flush_all()
        return self.env.cr.sql_log_count - before, result

    def _auto_stays(self, deal):
        """The stays the deal entered by itself (auto-advance), oldest first."""
        return deal.sudo().deal_log_ids.filtered(lambda log: log.cause == "auto").sorted("id")

    def _deal_activities(self, deals, condition):
        """The activities of the deals matching ``condition`` (a domain leaf)."""
        return (
            self.env["mail.activity"]
            .sudo()
            .search([("res_model", "=", "crm.lead"), ("res_id", "in", deals.ids), condition])
        )

    def _script_activities(self, deals):
        return self._deal_activities(deals, ("deal_script_activity_id", "!=", False))


# Friday 6 November 2026, 15:00 in Brussels (CET, UTC+1)
FRIDAY_15 = "2026-11-06 14:00:00"


class DealSlaCommon(DealStagesCommon):
    """Step 1 of the test script has a 16-working-hour deadline.

    The company's standard 40-hour schedule (Mon-Fri 8-12, 13-17, Brussels):
    a deal entering on Friday 15:00 has 2 hours on Friday, 8 on Monday and
    6 on Tuesday: deadline Tuesday 15:00 (14:00 UTC). Warning at 80%
    (12.8 hours): Tuesday 10:48 (09:48 UTC).
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.calendar = cls.env.company.resource_calendar_id
        cls.calendar.tz = "Europe/Brussels"
        cls.step_1.sla_hours = 16
        cls.deadline = datetime(2026, 11, 10, 14, 0)
        cls.warning = datetime(2026, 11, 10, 9, 48)

    def _run_cron(self, times=1, batch_size=200):
        # outside a cron job, _commit_progress commits: tests cannot
        with patch.object(IrCron, "_commit_progress", lambda self, processed=0, **kw: 3600.0):
            for _run in range(times):
                self.env["crm.lead"]._cron_deal_sla(batch_size=batch_size)

    def _sla_activities(self, deals, summary_start):
        return self._deal_activities(deals, ("summary", "=like", f"{summary_start}%"))


class DealGateCommon(DealStagesCommon):
    """The common script with exit requirements on each step.

    ====  =================================================================
    step  gate to leave
    ====  =================================================================
    1     checklist: "Signed contract attached" (required), "Welcome call"
          (optional)
    2     fields: Expected Revenue, Customer
    3     activities of the step done (the last step: gate to win)
    ====  =================================================================
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.check_signed, cls.check_call = cls.env["crm.deal.script.check"].create(
            [
                {"step_id": cls.step_1.id, "sequence": 1, "name": "Signed contract attached"},
                {
                    "step_id": cls.step_1.id,
                    "sequence": 2,
                    "name": "Welcome call",
                    "required": False,
                },
            ]
        )
        cls.step_2.required_field_ids = [
            Command.set(
                [
                    cls.env["ir.model.fields"]._get("crm.lead", "expected_revenue").id,
                    cls.env["ir.model.fields"]._get("crm.lead", "partner_id").id,
                ]
            )
        ]
        cls.step_3.require_activities_done = True
        cls.user_supervisor = mail_new_test_user(
            cls.env,
            login="user_deal_supervisor",
            name="Sofia Supervisor",
            email="sofia.supervisor@test.example.com",
            groups="sales_team.group_sale_salesman_all_leads,deal_stages.group_deal_supervisor",
        )

    def _tick(self, deals, check):
        deals.deal_check_ids.filtered(lambda c: c.check_id == check).write({"done": True})


class DealMessageCommon(DealStagesCommon):
    """The common script; deals entering ``step_2`` get a customer message."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.template = cls.env.ref("deal_stages.mail_template_deal_production")
        cls.step_1.name = "Contract signing"
        cls.step_2.write(
            {"name": "Invoicing", "mail_template_id": cls.template.id, "mail_mode": "auto"}
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Hubert Farnsworth", "email": "hubert@planet.example.com", "lang": "en_US"}
        )
        cls.deal = cls._create_deal(cls.customer)

    @classmethod
    def _create_deal(cls, partner=False, name="Office furniture", **values):
        return cls.env["crm.lead"].create(
            {
                "name": name,
                "type": "opportunity",
                "team_id": cls.sales_team_1.id,
                "user_id": cls.user_sales_salesman.id,
                "partner_id": partner and partner.id,
                **values,
            }
        )

    def _customer_mails(self, partner):
        return self._new_mails.filtered(lambda mail: partner in mail.recipient_ids)

    def _move(self, deals, stage, user=None):
        deals.with_user(user or self.user_sales_salesman).write({"stage_id": stage.id})


class DealExceptionCommon(DealStagesCommon):
    """The common script with a 4th step (Shipment) and refusal / change templates.

    ====  ===========  ======================================  ==========================
    step  name         on refusal (lost)                       on order change
    ====  ===========  ======================================  ==========================
    1     Contract     —                                       —
    2     Invoicing    "Cancel the invoice" (salesperson)      "Re-issue the invoice for
                                                               the difference"
    3     Prepayment   "Refund the prepayment" (sales_leads),  —
                       lost reason required
    4     Shipment     "Refund the prepayment", "Cancel the    —
                       shipment"
    ====  ===========  ======================================  ==========================

    An increase returns to Invoicing by default.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stage_shipment = cls.env["crm.stage"].create(
            {"name": "Shipment", "sequence": 7, "team_ids": [cls.sales_team_1.id]}
        )
        cls.step_1.name = "Contract"
        cls.step_2.write(
            {
                "name": "Invoicing",
                "activity_template_ids": [
                    cls._template_vals("lost", "Cancel the invoice"),
                    cls._template_vals(
                        "change", "Re-issue the invoice for the difference", reentry="always"
                    ),
                ],
            }
        )
        cls.step_3.write(
            {
                "name": "Prepayment",
                "lost_reason_required": True,
                "activity_template_ids": [
                    cls._template_vals(
                        "lost",
                        "Refund the prepayment",
                        assign_to="user",
                        user_id=cls.user_sales_leads.id,
                    ),
                ],
            }
        )
        cls.step_4 = cls.env["crm.deal.script.step"].create(
            {
                "script_id": cls.script.id,
                "sequence": 4,
                "name": "Shipment",
                "stage_id": cls.stage_shipment.id,
                "activity_template_ids": [
                    cls._template_vals("enter", "Ship the order", reentry="always"),
                    cls._template_vals("lost", "Refund the prepayment"),
                    cls._template_vals("lost", "Cancel the shipment"),
                ],
            }
        )
        cls.script.return_step_increase_id = cls.step_2
        cls.reason = cls.env["crm.lost.reason"].create({"name": "Too expensive"})
        cls.customer = cls.env["res.partner"].create(
            {"name": "Hubert Farnsworth", "email": "hubert@planet.example.com"}
        )

    @classmethod
    def _template_vals(cls, trigger, summary, **values):
        return Command.create(
            {
                "trigger": trigger,
                "activity_type_id": cls.env.ref("mail.mail_activity_data_todo").id,
                "summary": summary,
                **values,
            }
        )

    def _deals_at(self, step, count=1, **values):
        """Deals of the salesperson moved step by step up to ``step``."""
        deals = self._create_deals(count, **values)
        for other in self.script.step_ids.sorted("sequence"):
            if other.sequence > step.sequence:
                break
            if deals[0].stage_id != other.stage_id:
                deals.write({"stage_id": other.stage_id.id})
        self.assertEqual(deals.deal_step_id, step)
        return deals

    @contextmanager
    def _assert_raises(self, exception, regex):
        """``assertRaisesRegex`` with Odoo's rollback of what was done before the error."""
        with self.assertRaises(exception) as catcher:
            yield catcher
        self.assertRegex(str(catcher.exception), regex)

    def _summaries(self, deal):
        return sorted(self._script_activities(deal).mapped("summary"))

    def _open_stay(self, deal):
        return deal.sudo().deal_log_ids.filtered(lambda log: not log.date_out)


class DealB2BCommon(DealStagesCommon):
    """The shipped B2B template run by a team: the base of the bridges' tests.

    ``b2b`` is the B2B template copied for ``team_b2b`` by its sales manager
    (the installed bridges' conditions included), with its seven steps from
    ``step_contract`` to ``step_completion``; ``customer`` orders. A B2B deal
    expects ``b2b_revenue`` unless told otherwise.
    """

    b2b_revenue = 1000.0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team_b2b = cls.env["crm.team"].create(
            {
                "name": "B2B",
                "user_id": cls.user_sales_manager.id,
                "member_ids": [Command.link(cls.user_sales_salesman.id)],
            }
        )
        cls.b2b = cls.env["crm.deal.script"].browse(
            cls.env["crm.deal.script"]
            .with_user(cls.user_sales_manager)
            .action_create_from_template(cls.team_b2b.id)
        )
        (
            cls.step_contract,
            cls.step_invoicing,
            cls.step_prepayment,
            cls.step_production,
            cls.step_shipment,
            cls.step_closing,
            cls.step_completion,
        ) = cls.b2b.step_ids.sorted(lambda step: (step.sequence, step.id))
        cls.customer = cls.env["res.partner"].create({"name": "Deal Customer"})

    def _create_b2b_deal(self, step, revenue=None, **values):
        """A B2B deal of the salesperson standing at ``step``.

        Created by the system (an import of a deal in progress): a
        salesperson creates deals at the first step only.
        """
        return (
            self.env["crm.lead"]
            .create(
                {
                    "name": "Order of machines",
                    "type": "opportunity",
                    "team_id": self.team_b2b.id,
                    "user_id": self.user_sales_salesman.id,
                    "partner_id": self.customer.id,
                    "expected_revenue": self.b2b_revenue if revenue is None else revenue,
                    "stage_id": step.stage_id.id,
                    **values,
                }
            )
            .with_user(self.user_sales_salesman)
        )

    def _b2b_order(self, deal, product, quantity=1, **line_values):
        """A sales order of the deal, confirmed by the salesperson (sale bridge)."""
        order = (
            self.env["sale.order"]
            .with_user(self.user_sales_salesman)
            .create(
                {
                    "partner_id": self.customer.id,
                    "opportunity_id": deal.id,
                    "order_line": [
                        Command.create(
                            {"product_id": product.id, "product_uom_qty": quantity, **line_values}
                        )
                    ],
                }
            )
        )
        order.action_confirm()
        return order


class DealVersionCommon(DealGateCommon):
    """The gate test script, published version 1 of its process, with deals
    of the salesperson in each of its three steps."""

    def _deals_in_three_steps(self):
        deals = self._create_deals(3)
        deals[1:]._deal_move_context("move", skip_gate=True).stage_id = self.stage_team1_2
        deals[2]._deal_move_context("move", skip_gate=True).stage_id = self.stage_prepayment
        return deals

    def _new_version(self, script=None):
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        return Script.browse(Script.browse((script or self.script).id).action_new_version())

    def _step(self, script, key):
        return script.step_ids.filtered(lambda step: step.step_key == key)


class DealAttackCommon(DealStagesCommon):
    """The common script; step 2 has a required checklist item and a
    deadline. ``deal`` is the salesperson's, at step 1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_sales_admin = mail_new_test_user(
            cls.env,
            login="user_sales_admin_no_settings",
            name="Sam Sales Admin",
            email="sam.admin@test.example.com",
            groups="sales_team.group_sale_manager",
        )
        cls.user_supervisor = mail_new_test_user(
            cls.env,
            login="user_attack_supervisor",
            name="Sue Supervisor",
            email="sue.supervisor@test.example.com",
            groups="sales_team.group_sale_salesman_all_leads,deal_stages.group_deal_supervisor",
        )
        cls.check_invoice_sent = cls.env["crm.deal.script.check"].create(
            {"step_id": cls.step_2.id, "name": "Invoice sent to the customer"}
        )
        cls.step_2.sla_hours = 24
        cls.deal = cls.env["crm.lead"].create(
            {
                "name": "Attacked deal",
                "type": "opportunity",
                "team_id": cls.sales_team_1.id,
                "user_id": cls.user_sales_salesman.id,
            }
        )
        cls.group_system = cls.env.ref("base.group_system")

    def _as(self, user, records):
        records = records.with_user(user)
        records.invalidate_recordset()
        return records

    def _draft_step(self, step):
        """``step`` in a new draft version of its script: a published version is
        fixed, configuration is tried where it is allowed."""
        draft = self.env["crm.deal.script"].browse(step.script_id.action_new_version())
        return draft.step_ids.filtered(lambda draft_step: draft_step.step_key == step.step_key)

    def _open_stay(self, deal):
        return deal.sudo().deal_log_ids.filtered(lambda log: not log.date_out)


# the reference receiver lives in the repository's tools/ (not in the addon)
_RECEIVER_PATH = Path(__file__).resolve().parents[2] / "tools" / "handoff_receiver.py"
_spec = importlib.util.spec_from_file_location("handoff_receiver", _RECEIVER_PATH)
handoff_receiver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handoff_receiver)


class DealHandoffCommon(DealStagesCommon):
    """The common script whose step 2 hands the order off to a real receiver
    on 127.0.0.1 (a free port), acknowledgement required to leave it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secret = handoff_tools.new_secret()
        cls.receiver = handoff_receiver.HandoffReceiver(cls.secret).start()
        cls.addClassCleanup(cls.receiver.stop)
        cls.user_integration_owner = mail_new_test_user(
            cls.env,
            login="user_handoff_owner",
            name="Ivan Integrator",
            email="ivan.integrator@test.example.com",
            groups="sales_team.group_sale_salesman",
        )
        cls.endpoint = cls.env["crm.deal.handoff.endpoint"].create(
            {
                "name": "1C:Enterprise",
                "url": cls.receiver.url,
                "secret": cls.secret,
                "timeout": 2,
                "user_id": cls.user_integration_owner.id,
            }
        )
        cls.step_2.write({"handoff_endpoint_id": cls.endpoint.id, "handoff_required": True})
        cls.user_supervisor = mail_new_test_user(
            cls.env,
            login="user_handoff_supervisor",
            name="Sofia Supervisor",
            email="sofia.handoff@test.example.com",
            groups="sales_team.group_sale_salesman_all_leads,deal_stages.group_deal_supervisor",
        )

    @classmethod
    def _request_handler(cls, s, r, /, **kw):
        # Odoo's tests raise every timeout under 10 s to 10 s: the receiver's
        # requests keep the endpoint's (the timeout test needs it)
        if urlsplit(r.url).port == cls.receiver.port:
            return _super_send(s, r, **kw)
        return super()._request_handler(s, r, **kw)

    def setUp(self):
        super().setUp()
        state = self.receiver.state
        state.planned.clear()
        state.stored.clear()
        state.log.clear()
        state.duplicates = 0
        state.delay = 0
        state.accept = False
        state.duplicate_status = 200

    def _deliver(self):
        """Run the delivery cron (outside a cron job its commits are no-ops here)."""
        IrCron = self.env.registry["ir.cron"]
        with patch.object(IrCron, "_commit_progress", lambda self, processed=0, **kw: 3600.0):
            self.env["crm.deal.handoff"]._cron_deliver()

    def _make_due(self, handoffs):
        handoffs.sudo().next_attempt = fields.Datetime.now() - timedelta(seconds=1)

    def _deal_at_step_2(self):
        deal = self._create_deals()
        deal.stage_id = self.stage_team1_2
        return deal

    @contextmanager
    def _broken_payloads(self):
        """Building a hand-off's payload fails ("no payload today")."""

        def broken(self, values_list):
            raise ValueError("no payload today")

        Lead = self.env.registry["crm.lead"]
        with (
            patch.object(Lead, "_deal_handoff_payloads", broken),
            mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_handoff"),
        ):
            yield

    def _order_change(self, deal, return_step, amount=500):
        """An increase of the order of ``deal`` by ``amount``, back to ``return_step``."""
        return self.env["crm.deal.order.change"].create(
            {
                "lead_id": deal.id,
                "change_type": "increase",
                "amount_delta": amount,
                "return_step_id": return_step.id,
            }
        )
