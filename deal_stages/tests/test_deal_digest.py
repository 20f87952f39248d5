from datetime import date

from freezegun import freeze_time

from odoo.tests import tagged

from .common import FRIDAY_15, DealSlaCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealDigest(DealSlaCommon):
    """Tuesday 10 November 2026: the digest goes out at 8:00 local time."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_sales_salesman.tz = "Europe/Brussels"
        cls.user_sales_manager.tz = "UTC"
        cls.user_sales_leads.tz = "UTC"
        cls.env["ir.config_parameter"].set_param("deal_stages.digest_hour", "8.0")
        other_team = cls.env["crm.team"].create({"name": "Team without script"})
        with freeze_time(FRIDAY_15):
            cls.deal_risk = cls.env["crm.lead"].create(
                {
                    "name": "Deal at risk",
                    "type": "opportunity",
                    "team_id": cls.sales_team_1.id,
                    "user_id": cls.user_sales_salesman.id,
                }
            )
            cls.deal_calm = cls.env["crm.lead"].create(
                {
                    "name": "Calm deal",
                    "type": "opportunity",
                    "team_id": cls.sales_team_1.id,
                    "user_id": cls.user_sales_salesman.id,
                    "stage_id": cls.stage_team1_2.id,
                }
            )
            cls.plain_lead = cls.env["crm.lead"].create(
                {
                    "name": "No script",
                    "type": "opportunity",
                    "team_id": other_team.id,
                    "user_id": cls.user_sales_salesman.id,
                }
            )
        # the script's own activities are reset to known dates
        cls.env["mail.activity"].search(
            [("res_model", "=", "crm.lead"), ("res_id", "in", (cls.deal_risk | cls.deal_calm).ids)]
        ).unlink()
        for lead, summary, deadline, user in [
            (cls.deal_risk, "Call back", date(2026, 11, 9), cls.user_sales_salesman),
            (cls.deal_calm, "Send the quote", date(2026, 11, 10), cls.user_sales_salesman),
            (cls.deal_calm, "Plan the visit", date(2026, 11, 12), cls.user_sales_salesman),
            (cls.deal_calm, "Approve the discount", date(2026, 11, 10), cls.user_sales_manager),
            (cls.plain_lead, "Not a deal", date(2026, 11, 9), cls.user_sales_salesman),
        ]:
            lead.activity_schedule(
                "mail.mail_activity_data_todo",
                date_deadline=deadline,
                summary=summary,
                user_id=user.id,
            )

    def _digests(self, user=None):
        domain = [("subject", "like", "Your deals on")]
        if user:
            domain.append(("recipient_ids", "in", user.partner_id.ids))
        return self.env["mail.mail"].sudo().search(domain)

    def _run_digest(self, when):
        with freeze_time(when):
            self._run_cron()
            self.env["res.users"]._cron_deal_digest()

    def test_digest_contents_per_user(self):
        self._run_digest("2026-11-10 09:50:00")
        self.assertEqual(self.deal_risk.deal_sla_state, "warning")

        salesman_mail = self._digests(self.user_sales_salesman)
        self.assertEqual(len(salesman_mail), 1)
        self.assertEqual(salesman_mail.recipient_ids, self.user_sales_salesman.partner_id)
        self.assertEqual(
            salesman_mail.subject,
            "Your deals on 2026-11-10: 1 overdue, 2 due today, 1 at risk",
        )
        body = salesman_mail.body_html
        self.assertIn("Call back", body)  # overdue
        self.assertIn("Send the quote", body)  # due today
        self.assertIn("Deadline approaching: New", body)  # the SLA warning, due today
        self.assertIn("Deal at risk", body)
        self.assertIn("At risk", body)
        self.assertNotIn("Plan the visit", body, "not due yet")
        self.assertNotIn("Approve the discount", body, "someone else's")
        self.assertNotIn("Not a deal", body, "only deals' activities")
        self.assertNotIn("Team Test Sales Team", body)
        self.assertIn(f"/mail/view?model=crm.lead&amp;res_id={self.deal_risk.id}", body)

        leader_mail = self._digests(self.user_sales_manager)
        self.assertEqual(len(leader_mail), 1)
        body = leader_mail.body_html
        self.assertIn("Approve the discount", body, "their own")
        self.assertIn("Team Test Sales Team", body)
        self.assertIn("Call back", body, "the team's")
        self.assertIn("Deal at risk", body)
        self.assertIn(self.user_sales_salesman.name, body)

        self.assertFalse(self._digests(self.user_sales_leads), "nothing to say: no email")

    def test_one_digest_a_day_at_local_time(self):
        self._run_digest("2026-11-10 06:30:00")  # 7:30 in Brussels, 6:30 UTC
        self.assertFalse(self._digests())
        self._run_digest("2026-11-10 07:05:00")  # 8:05 in Brussels
        self.assertEqual(len(self._digests(self.user_sales_salesman)), 1)
        self.assertFalse(self._digests(self.user_sales_manager), "7:05 UTC")
        self._run_digest("2026-11-10 08:05:00")
        self._run_digest("2026-11-10 15:05:00")
        self.assertEqual(len(self._digests(self.user_sales_salesman)), 1)
        self.assertEqual(len(self._digests(self.user_sales_manager)), 1)
        self._run_digest("2026-11-11 08:05:00")
        self.assertEqual(len(self._digests(self.user_sales_salesman)), 2, "next day")

    def test_opt_out(self):
        self.user_sales_salesman.with_user(self.user_sales_salesman).write(
            {"deal_digest_enabled": False}
        )
        self._run_digest("2026-11-10 09:50:00")
        self.assertFalse(self._digests(self.user_sales_salesman))
        self.assertEqual(len(self._digests(self.user_sales_manager)), 1)

    def test_settings(self):
        settings = self.env["res.config.settings"].create({})
        self.assertTrue(settings.deal_digest_active)
        self.assertEqual(settings.deal_digest_hour, 8.0)
        settings.write({"deal_digest_active": False, "deal_digest_hour": 7.5})
        settings.execute()
        self.assertFalse(self.env.ref("deal_stages.ir_cron_deal_digest").active)
        self.assertEqual(
            self.env["ir.config_parameter"].get_param("deal_stages.digest_hour"), "7.5"
        )
        self.assertFalse(self.env["res.config.settings"].create({}).deal_digest_active)
