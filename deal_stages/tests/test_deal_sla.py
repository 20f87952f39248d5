from datetime import datetime
from unittest.mock import patch

from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import Command
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged, users
from odoo.tools import SQL, mute_logger

from odoo.addons.deal_stages.models.crm_lead_deal_sla import CrmLeadDealSla as CrmLeadSla
from odoo.addons.mail.tests.common import mail_new_test_user

from .common import FRIDAY_15, DealSlaCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealSla(DealSlaCommon):
    @users("user_sales_salesman")
    def test_deadline_in_working_hours(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertEqual(deal.deal_step_id, self.step_1)
        self.assertEqual(deal.deal_sla_deadline, self.deadline)
        self.assertEqual(deal.deal_sla_warning_date, self.warning)
        self.assertEqual(deal.deal_sla_state, "ok")
        self.assertEqual(deal.deal_sla_next_check, self.warning)
        self.assertFalse(deal.deal_sla_escalation_date)
        with freeze_time("2026-11-09 09:00:00"):
            deal.invalidate_recordset(["deal_sla_label"])
            self.assertEqual(deal.deal_sla_label, "1d 5h left")
            self.assertEqual(deal.deal_sla_live_state, "ok")
        with freeze_time("2026-11-10 16:30:00"):
            deal.invalidate_recordset(["deal_sla_label"])
            self.assertEqual(deal.deal_sla_label, "Overdue 2h 30m")
            self.assertEqual(deal.deal_sla_live_state, "breached")

    def test_deadline_skips_public_holidays(self):
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Armistice",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2026, 11, 10, 23, 0),
                "date_to": datetime(2026, 11, 11, 22, 59, 59),
            }
        )
        self.step_1.sla_hours = 24  # Friday 2 + Monday 8 + Tuesday 8 + Thursday 6
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertEqual(deal.deal_sla_deadline, datetime(2026, 11, 12, 14, 0))

    def test_deadline_in_calendar_hours(self):
        self.script.sla_working_time = False
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertEqual(deal.deal_sla_deadline, datetime(2026, 11, 7, 6, 0))
        self.assertEqual(deal.deal_sla_warning_date, datetime(2026, 11, 7, 2, 48))

    def test_team_schedule_wins_over_company(self):
        team_calendar = self.env["resource.calendar"].create(
            {
                "name": "Round the clock",
                "tz": "UTC",
                "attendance_ids": [
                    Command.create(
                        {"name": str(day), "dayofweek": str(day), "hour_from": 0, "hour_to": 24}
                    )
                    for day in range(7)
                ],
            }
        )
        self.sales_team_1.resource_calendar_id = team_calendar
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertEqual(deal.deal_sla_deadline, datetime(2026, 11, 7, 6, 0))

    def test_no_deadline_step(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals(stage_id=self.stage_team1_2.id)
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(deal.deal_sla_state, "none")
        self.assertFalse(deal.deal_sla_deadline)
        self.assertFalse(deal.deal_sla_next_check)

    def test_ladder_fires_once_per_level(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-10 09:47:00"):
            self._run_cron(3)
        self.assertEqual(deal.deal_sla_state, "ok")
        self.assertFalse(self._sla_activities(deal, "Deadline approaching"))

        with freeze_time("2026-11-10 09:48:00"):
            self._run_cron(3)
        warning = self._sla_activities(deal, "Deadline approaching")
        self.assertEqual(len(warning), 1)
        self.assertEqual(warning.user_id, self.user_sales_salesman)
        self.assertEqual(warning.summary, "Deadline approaching: New")
        self.assertEqual(warning.date_deadline, self.deadline.date())
        self.assertEqual(deal.deal_sla_state, "warning")
        self.assertEqual(deal.deal_sla_next_check, self.deadline)
        self.assertFalse(self._sla_activities(deal, "Deal stalled"))
        self.assertFalse(deal.deal_log_ids.sla_breached)

        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(3)
        stalled = self._sla_activities(deal, "Deal stalled")
        self.assertEqual(len(stalled), 1)
        self.assertEqual(stalled.summary, "Deal stalled at New")
        self.assertEqual(stalled.user_id, self.user_sales_manager, "the team leader")
        self.assertEqual(len(self._sla_activities(deal, "Deadline approaching")), 1)
        self.assertEqual(deal.deal_sla_state, "breached")
        self.assertFalse(deal.deal_sla_next_check, "no escalation configured")
        self.assertTrue(deal.deal_log_ids.sla_breached)
        notification = deal.message_ids.filtered(
            lambda m: "Deal stalled" in m.body and m.partner_ids
        )
        self.assertEqual(len(notification), 1, "the supervisors are notified once")
        self.assertIn(self.user_sales_manager.partner_id, notification.partner_ids)
        self.assertNotIn(self.user_sales_salesman.partner_id, notification.partner_ids)
        self.assertEqual(notification.subtype_id, self.env.ref("mail.mt_note"))

        with freeze_time("2026-11-20 14:00:00"):
            self._run_cron(3)
        self.assertEqual(len(self._sla_activities(deal, "Deal stalled")), 1)

    def test_ladder_activities_in_assignee_language(self):
        """The cron (OdooBot's language) writes each activity in its assignee's."""
        self.env["res.lang"]._activate_lang("ru_RU")
        self.env["ir.module.module"]._load_module_terms(["deal_stages"], ["ru_RU"], overwrite=True)
        self.user_sales_salesman.lang = "ru_RU"
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-10 09:48:00"):
            self._run_cron(3)
        warning = self._sla_activities(deal, "Приближается срок этапа")
        self.assertEqual(warning.user_id, self.user_sales_salesman)
        self.assertEqual(warning.summary, "Приближается срок этапа: New")
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(3)
        stalled = self._sla_activities(deal, "Deal stalled")
        self.assertEqual(stalled.user_id, self.user_sales_manager, "English team leader")
        self.assertEqual(stalled.summary, "Deal stalled at New")

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_breach_batch_tells_each_person_once(self):
        """A batch of breaches: one message per person told, listing the deals, queued."""
        with freeze_time(FRIDAY_15):
            deals = self._create_deals(3)
        manager = self.user_sales_manager.partner_id  # team leader and supervisor
        # the deals' creation is committed (the leader told of its activities)
        self.env.cr.flush()
        domain = [("partner_ids", "in", manager.ids), ("message_type", "=", "user_notification")]
        before = self.env["mail.message"].search(domain)
        with freeze_time("2026-11-10 14:00:00"), self.mock_mail_gateway():
            self._run_cron()
            self.assertFalse(self._mails, "nothing is sent during the cron: queued")
        self.assertEqual(set(deals.mapped("deal_sla_state")), {"breached"})
        told = self.env["mail.message"].search(domain) - before
        stalled = told.filtered(lambda m: "Deals stalled: 3" in (m.subject or ""))
        self.assertEqual(len(stalled), 1, "the supervisors get one message for the batch")
        assigned = told.filtered(lambda m: "activities for you (3)" in (m.subject or ""))
        self.assertEqual(len(assigned), 1, "the team leader is told once of their 3 activities")
        for deal in deals:
            self.assertIn(deal.name, stalled.body)
            self.assertIn(f"res_id={deal.id}", assigned.body)
            self.assertEqual(len(self._sla_activities(deal, "Deal stalled")), 1)
            # each deal's chatter still records the breach and whom it told
            note = deal.message_ids.filtered(lambda m: "Deal stalled" in m.body and m.partner_ids)
            self.assertEqual(len(note), 1)
            self.assertIn(manager, note.partner_ids)

    @mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security")
    def test_batch_with_a_failing_deal_tells_each_person_once(self):
        """One deal whose escalation fails sends the batch on deal by deal, in
        savepoints: the salesperson is still told once of the others'."""
        broken_user = mail_new_test_user(
            self.env,
            login="broken_tz_sla",
            name="Broken Timezone",
            email="broken.sla@test.example.com",
            groups="sales_team.group_sale_salesman",
        )
        with freeze_time(FRIDAY_15):
            good = self._create_deals(4)
            broken = self._create_deals(user_id=broken_user.id)
        # a timezone removed from the system: this deal's escalation raises
        self.env.cr.execute(
            "UPDATE res_partner SET tz = 'Mars/Olympus' WHERE id = %s", (broken_user.partner_id.id,)
        )
        self.env.invalidate_all()
        self.env.cr.flush()
        salesperson = self.user_sales_salesman.partner_id
        domain = [
            ("partner_ids", "in", salesperson.ids),
            ("message_type", "=", "user_notification"),
        ]
        before = self.env["mail.message"].search(domain)
        with freeze_time("2026-11-10 09:48:00"):
            self._run_cron()
        self.env.cr.flush()
        self.assertEqual(set(good.mapped("deal_sla_state")), {"warning"})
        self.assertEqual(broken.deal_sla_level, 0, "the failing deal is left for later")
        told = self.env["mail.message"].search(domain) - before
        self.assertEqual(len(told), 1, "one message for the batch, not one per deal")
        self.assertEqual(told.subject, "New activities for you (4)")
        for deal in good:
            self.assertIn(f"res_id={deal.id}", told.body)

    def test_second_level_to_sales_manager(self):
        self.script.write(
            {"sla_escalation_hours": 4, "sla_escalation_user_id": self.user_sales_leads.id}
        )
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        # Tuesday 15:00 + 4 working hours (15-17, then 8-10): Wednesday 10:00 (9:00 UTC)
        self.assertEqual(deal.deal_sla_escalation_date, datetime(2026, 11, 11, 9, 0))
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(2)
        self.assertEqual(deal.deal_sla_next_check, datetime(2026, 11, 11, 9, 0))
        with freeze_time("2026-11-11 08:59:00"):
            self._run_cron()
        self.assertFalse(self._sla_activities(deal, "Escalated"))
        with freeze_time("2026-11-11 09:00:00"):
            self._run_cron(3)
        escalated = self._sla_activities(deal, "Escalated")
        self.assertEqual(len(escalated), 1)
        self.assertEqual(escalated.user_id, self.user_sales_leads)
        self.assertFalse(deal.deal_sla_next_check)

    def test_late_cron_fires_each_level_once(self):
        self.script.write(
            {"sla_escalation_hours": 4, "sla_escalation_user_id": self.user_sales_leads.id}
        )
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-16 10:00:00"):
            self._run_cron(3)
        self.assertEqual(len(self._sla_activities(deal, "Deadline approaching")), 1)
        self.assertEqual(len(self._sla_activities(deal, "Deal stalled")), 1)
        self.assertEqual(len(self._sla_activities(deal, "Escalated")), 1)
        self.assertEqual(deal.deal_sla_state, "breached")
        self.assertEqual(deal.deal_sla_level, 3)

    def test_step_sla_templates_replace_default(self):
        self.step_1.activity_template_ids = [
            Command.create(
                {
                    "trigger": "sla",
                    "activity_type_id": self.activity_type_todo.id,
                    "summary": "Call the customer about the contract",
                    "assign_to": "user",
                    "user_id": self.user_sales_leads.id,
                }
            )
        ]
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        self.assertFalse(self._sla_activities(deal, "Call the customer"), "not on entry")
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(3)
        call = self._sla_activities(deal, "Call the customer")
        self.assertEqual(len(call), 1)
        self.assertEqual(call.user_id, self.user_sales_leads)
        self.assertFalse(self._sla_activities(deal, "Deal stalled"))

    def test_leaving_before_deadline_no_escalation(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-10 13:00:00"):
            deal.with_user(self.user_sales_salesman).stage_id = self.stage_team1_2
        self.assertEqual(deal.deal_sla_state, "none")
        self.assertFalse(deal.deal_sla_deadline)
        self.assertFalse(deal.deal_sla_next_check)
        with freeze_time("2026-11-20 14:00:00"):
            self._run_cron(3)
        self.assertFalse(self._sla_activities(deal, "Deal stalled"))
        self.assertFalse(any(deal.deal_log_ids.mapped("sla_breached")))
        self.assertEqual(
            len(self._sla_activities(deal, "Deadline approaching")),
            0,
            "the warning of a step left is cancelled with the step's activities",
        )

    def test_reentry_restarts_deadline(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron()
        self.assertEqual(deal.deal_sla_state, "breached")
        with freeze_time("2026-11-11 08:00:00"):  # Wednesday 9:00
            deal.stage_id = self.stage_team1_2
            self.assertEqual(deal.deal_sla_state, "none")
            deal.stage_id = self.stage_team1_1
        self.assertEqual(deal.deal_sla_state, "ok")
        self.assertEqual(deal.deal_sla_level, 0)
        # Wednesday 9:00 + 16 working hours: Friday 9:00
        self.assertEqual(deal.deal_sla_deadline, datetime(2026, 11, 13, 8, 0))
        stays = deal.deal_log_ids.sorted("id")
        self.assertEqual(stays.mapped("sla_breached"), [True, False, False])
        with freeze_time("2026-11-13 08:00:00"):
            self._run_cron(2)
        self.assertEqual(deal.deal_sla_state, "breached")
        self.assertEqual(deal.deal_log_ids.sorted("id").mapped("sla_breached"), [True, False, True])
        self.assertEqual(
            len(self._sla_activities(deal, "Deal stalled")),
            1,
            "the first stay's activity was cancelled on exit, the second stay has its own",
        )

    def test_lost_deal_not_escalated(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        deal.action_set_lost()
        with freeze_time("2026-11-20 14:00:00"):
            self._run_cron()
        self.assertFalse(self._sla_activities(deal, "Deal stalled"))

    def test_lost_deal_drops_its_deadline_activities(self):
        # lost then restored, the deal's deadline is back "on time": the old
        # ladder's activities must not stay open beside it
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with freeze_time("2026-11-10 14:00:00"):
            self._run_cron(3)
        self.assertTrue(self._sla_activities(deal, "Deadline approaching"))
        self.assertTrue(self._sla_activities(deal, "Deal stalled"))
        manual = deal.activity_schedule("mail.mail_activity_data_todo", summary="Call back")
        deal.action_set_lost()
        deal.with_context(active_test=False).action_restore()
        self.assertFalse(self._sla_activities(deal, "Deadline approaching"))
        self.assertFalse(self._sla_activities(deal, "Deal stalled"))
        self.assertTrue(manual.exists(), "a person's own activity stays")

    def test_crash_after_first_batch(self):
        with freeze_time(FRIDAY_15):
            deals = self._create_deals(12)
        with freeze_time("2026-11-10 14:00:00"):
            # first batch committed, then the worker dies during the second
            self.env["crm.lead"]._deal_sla_process_batch(limit=5)
            original_post = CrmLeadSla._deal_sla_post

            def crash(records, notes, breached):
                original_post(records, notes, breached)
                # a killed worker, not an error of a deal: nothing catches it
                # (a deal that fails is skipped, see test_security_attacks)
                raise SystemExit("worker killed")

            with (
                patch.object(CrmLeadSla, "_deal_sla_post", crash),
                self.assertRaises(SystemExit),
                self.env.cr.savepoint(),
            ):
                self.env["crm.lead"]._deal_sla_process_batch(limit=5)
            self.env.invalidate_all()
            self.assertEqual(len(deals.filtered(lambda d: d.deal_sla_state == "breached")), 5)
            self._run_cron(batch_size=5)
            self._run_cron(batch_size=5)
        self.assertEqual(set(deals.mapped("deal_sla_state")), {"breached"})
        for deal in deals:
            self.assertEqual(len(self._sla_activities(deal, "Deadline approaching")), 1)
            self.assertEqual(len(self._sla_activities(deal, "Deal stalled")), 1)

    def test_script_escalation_settings_checked(self):
        with self.assertRaises(ValidationError):
            self.script.sla_escalation_hours = 4  # to whom?
            self.script.flush_recordset()
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError):
            self.script.sla_warning_percent = 100
            self.script.flush_recordset()

    @users("user_sales_salesman")
    def test_salesperson_cannot_reset_deadline(self):
        with freeze_time(FRIDAY_15):
            deal = self._create_deals()
        with self.assertRaises(AccessError):
            deal.write({"deal_sla_state": "ok", "deal_sla_deadline": False})
        with self.assertRaises(AccessError):
            self.env["crm.lead"].create({"name": "Fake", "deal_sla_state": "ok"})


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_perf")
class TestDealSlaPerformance(DealSlaCommon):
    def _clone_deals(self, template, count, next_check):
        """``count`` copies of ``template`` in SQL: fast data for volume tests."""
        self.env.flush_all()
        columns = [
            "name",
            "type",
            "active",
            "team_id",
            "user_id",
            "company_id",
            "stage_id",
            "deal_script_id",
            "deal_step_id",
            "deal_sla_state",
            "deal_sla_deadline",
            "deal_sla_level",
            "priority",
            "probability",
            "create_date",
            "write_date",
        ]
        column_sql = SQL(", ").join(SQL.identifier(column) for column in columns)
        self.env.cr.execute(
            SQL(
                "INSERT INTO crm_lead (%s, deal_sla_next_check) "
                "SELECT %s, %s FROM crm_lead, generate_series(1, %s) WHERE crm_lead.id = %s",
                column_sql,
                column_sql,
                next_check,
                count,
                template.id,
            )
        )
        self.env.cr.execute("ANALYZE crm_lead")

    def _cron_queries(self):
        return self._count_queries(self._run_cron)[0]

    def test_cron_queries_do_not_grow_with_deals_not_due(self):
        with freeze_time(FRIDAY_15):
            template = self._create_deals()
            due = self._create_deals(5)
        self._clone_deals(template, 1000, datetime(2027, 1, 1))
        with freeze_time("2026-11-10 09:48:00"):
            # warm up the caches (activity type, model ids, groups)
            self._run_cron()
            self.assertEqual(set(due.mapped("deal_sla_state")), {"warning"})
            small = self._cron_queries()  # nothing due
        self._clone_deals(template, 19000, datetime(2027, 1, 1))
        with freeze_time("2026-11-10 09:49:00"):
            large = self._cron_queries()
        self.assertEqual(small, large)
        with freeze_time("2026-11-10 14:00:00"):
            breach_queries = self._cron_queries()
        self.assertEqual(set(due.mapped("deal_sla_state")), {"breached"})
        # one note per deal in one insert, one message per person told
        # (5 breaches: 65 queries measured)
        self.assertLess(breach_queries, 100)
