from unittest.mock import patch

from odoo.exceptions import AccessError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealStagesCommon

HISTORY_MODELS = ("crm.deal.stage.log", "crm.deal.step.stay.report", "crm.deal.step.time.report")


@tagged("post_install", "-at_install", "deal_stages")
class TestDealReportOwners(DealStagesCommon):
    """The deal's owner copied on its stage history and per-step totals
    (``lead_user_id``, ``lead_team_id``): the history's record rules and the
    time-in-step analyses read it, so it must always be the deal's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user_other_salesman = mail_new_test_user(
            cls.env,
            login="user_other_salesman",
            name="Olga Other Salesman",
            email="olga@test.example.com",
            company_id=cls.company_main.id,
            groups="sales_team.group_sale_salesman",
        )
        cls._setup_team_b()

    def _deal_with_history(self):
        deal = self._create_deals()
        deal.stage_id = self.step_2.stage_id
        self.env.flush_all()
        return deal

    def _visible(self, user, deal):
        """{model: whether ``user`` sees rows of ``deal``} of the history models."""
        return {
            model: bool(self.env[model].with_user(user).search([("lead_id", "=", deal.id)]))
            for model in HISTORY_MODELS
        }

    def test_new_history_carries_the_owner(self):
        deal = self._deal_with_history()
        stays = deal.sudo().deal_log_ids
        self.assertEqual(len(stays), 2)
        self.assertEqual(stays.lead_user_id, self.user_sales_salesman)
        self.assertEqual(stays.lead_team_id, self.sales_team_1)
        Total = self.env["crm.deal.step.total"].sudo()
        Total._flush_pending()  # the totals are computed before commit
        totals = Total.search([("lead_id", "=", deal.id)])
        self.assertEqual(len(totals), 2)
        self.assertEqual(totals.lead_user_id, self.user_sales_salesman)
        self.assertEqual(totals.lead_team_id, self.sales_team_1)

    def test_salesperson_sees_only_own_history(self):
        deal = self._deal_with_history()
        everything = dict.fromkeys(HISTORY_MODELS, True)
        nothing = dict.fromkeys(HISTORY_MODELS, False)
        self.assertEqual(self._visible(self.user_sales_salesman, deal), everything)
        self.assertEqual(self._visible(self.user_other_salesman, deal), nothing)
        # and as Odoo's rules on the deal itself
        with self.assertRaises(AccessError):
            deal.with_user(self.user_other_salesman).read(["name"])
        # a deal without salesperson: every salesperson sees it, as in crm
        deal.user_id = False
        self.assertEqual(self._visible(self.user_other_salesman, deal), everything)

    def test_reassigned_deal_moves_its_history(self):
        """Reassigning a deal moves its history to the new owner's view, in
        the same transaction (no commit, nothing flushed by hand)."""
        deal = self._deal_with_history()
        deal.with_user(self.user_sales_manager).write({"user_id": self.user_other_salesman.id})
        everything = dict.fromkeys(HISTORY_MODELS, True)
        nothing = dict.fromkeys(HISTORY_MODELS, False)
        self.assertEqual(self._visible(self.user_other_salesman, deal), everything)
        self.assertEqual(self._visible(self.user_sales_salesman, deal), nothing)
        self.assertEqual(deal.sudo().deal_log_ids.lead_user_id, self.user_other_salesman)
        # the time-in-step analysis per deal groups it under its new salesperson
        groups = (
            self.env["crm.deal.step.time.report"]
            .with_user(self.user_sales_manager)
            ._read_group([("lead_id", "=", deal.id)], ["salesperson_id"], ["__count"])
        )
        self.assertEqual(groups, [(self.user_other_salesman, 2)])

    def test_team_change_moves_history_to_the_team_leader(self):
        deal = self._deal_with_history()
        leader = self.user_team_leader
        self.assertEqual(self._visible(leader, deal), dict.fromkeys(HISTORY_MODELS, False))
        deal.write({"team_id": self.sales_team_2.id})
        self.assertEqual(self._visible(leader, deal), dict.fromkeys(HISTORY_MODELS, True))
        self.assertEqual(deal.sudo().deal_log_ids.lead_team_id, self.sales_team_2)
        # the team gets a new leader: the rule follows the team
        self.sales_team_2.user_id = self.user_sales_manager
        self.assertEqual(self._visible(leader, deal), dict.fromkeys(HISTORY_MODELS, False))

    def test_bulk_reassignment_one_statement(self):
        """Reassigning many deals: one sync for the batch, no query per deal."""
        deals = self._create_deals(count=20)
        deals.stage_id = self.step_2.stage_id
        self.env.flush_all()
        Lead = type(self.env["crm.lead"])
        with patch.object(
            Lead, "_deal_sync_owners", autospec=True, side_effect=Lead._deal_sync_owners
        ) as sync:
            deals.user_id = self.user_other_salesman
            self.env.flush_all()
        self.assertEqual(sync.call_count, 1)
        self.assertEqual(sorted(sync.call_args.args[1]), sorted(deals.ids))
        stays = deals.sudo().deal_log_ids
        self.assertEqual(len(stays), 40)
        self.assertEqual(stays.lead_user_id, self.user_other_salesman)

    def test_forged_owner_refused(self):
        """The copied owner decides who sees the history: nobody writes it,
        not even an administrator (who may write the history otherwise)."""
        deal = self._deal_with_history()
        stay = deal.sudo().deal_log_ids.filtered("date_out")
        admin = self.env.ref("base.user_admin")
        for user in (admin, self.user_sales_salesman):
            for vals in (
                {"lead_user_id": self.user_other_salesman.id},
                {"lead_team_id": self.sales_team_2.id},
            ):
                with self.subTest(user=user.login, vals=vals), self.assertRaises(AccessError):
                    stay.with_user(user).write(vals)
        with self.assertRaises(AccessError):
            self.env["crm.deal.stage.log"].with_user(admin).create(
                {
                    "lead_id": deal.id,
                    "step_id": self.step_1.id,
                    "lead_user_id": self.user_other_salesman.id,
                }
            )
        # a stay moved to another deal by an administrator takes that deal's owner
        other = self._create_deals(user_id=self.user_other_salesman.id)
        stay.with_user(admin).write({"lead_id": other.id})
        self.assertEqual(stay.lead_user_id, self.user_other_salesman)
        Log = self.env["crm.deal.stage.log"]
        self.assertEqual(
            Log.with_user(self.user_other_salesman).search([("id", "=", stay.id)]), stay
        )
        self.assertFalse(Log.with_user(self.user_sales_salesman).search([("id", "=", stay.id)]))
