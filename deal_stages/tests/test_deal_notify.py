"""Entry work tells each person once per batch (issue 18).

A manager moving the team's deals: the engine's activities are created
without Odoo's email per activity; each assignee other than the mover gets
one notification per transaction listing their new activities, in their
language, in their inbox or by email as each chose.
"""

from odoo import SUPERUSER_ID, Command
from odoo.tests import tagged, users

from odoo.addons.mail.tests.common import mail_new_test_user

from .common import DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealNotify(DealStagesCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a sales manager who is not the leader of the deals' team
        cls.user_deal_manager = mail_new_test_user(
            cls.env,
            login="user_deal_manager",
            name="Marta Manager",
            email="marta.manager@example.com",
            groups="sales_team.group_sale_manager",
            notification_type="inbox",
        )
        # step 2 gives the salesperson three activities, as the bench's step
        cls.step_2.activity_template_ids = [
            Command.create(
                {
                    "sequence": 10 + index,
                    "activity_type_id": cls.activity_type_todo.id,
                    "summary": summary,
                    "deadline_days": index + 1,
                }
            )
            for index, summary in enumerate(["Send the invoice", "Call the customer"])
        ]

    def _commit(self):
        """What a commit runs before committing: the notifications are sent."""
        self.env.cr.flush()

    def _messages_to(self, user):
        """The notifications ``user`` received (inbox or email)."""
        return (
            self.env["mail.message"]
            .sudo()
            .search(
                [
                    ("message_type", "=", "user_notification"),
                    ("partner_ids", "in", user.partner_id.ids),
                ]
            )
        )

    def _new_messages_to(self, user, operation):
        self._commit()
        before = self._messages_to(user)
        operation()
        self._commit()
        return self._messages_to(user) - before

    def _per_activity_messages(self):
        """Odoo's own notification of an assigned activity ("... assigned to you")."""
        return (
            self.env["mail.message"]
            .sudo()
            .search(
                [
                    ("message_type", "=", "user_notification"),
                    ("subject", "=like", "%assigned to you"),
                ]
            )
        )

    @users("user_deal_manager")
    def test_manager_bulk_move_tells_salesperson_once(self):
        deals = self._create_deals_in_step(self.stage_team1_1, 50)
        self._commit()
        with self.mock_mail_gateway():
            told = self._new_messages_to(
                self.user_sales_salesman,
                lambda: deals.write({"stage_id": self.stage_team1_2.id}),
            )
        activities = self._deal_activities(deals, ("deal_step_id", "=", self.step_2.id))
        self.assertEqual(len(activities), 150)
        self.assertEqual(activities.user_id, self.user_sales_salesman)
        self.assertEqual(len(told), 1, "one notification for the batch")
        self.assertEqual(told.subject, "New activities for you (150)")
        self.assertEqual(told.author_id, self.user_deal_manager.partner_id, "from the mover")
        self.assertEqual(told.body.count("<li>"), 150, "each activity listed")
        for deal in deals:
            self.assertIn(f"res_id={deal.id}", told.body, "a link to each deal")
        for summary in ("Issue the invoice", "Send the invoice", "Call the customer"):
            self.assertIn(summary, told.body)
        # in the salesperson's inbox, nothing by email
        notification = told.notification_ids
        self.assertEqual(notification.res_partner_id, self.user_sales_salesman.partner_id)
        self.assertEqual(notification.notification_type, "inbox")
        self.assertFalse(self._new_mails, "no email: the salesperson reads the inbox")
        self.assertFalse(self._per_activity_messages(), "no message per activity")

    @users("user_deal_manager")
    def test_manager_bulk_move_emails_once_by_preference(self):
        self.user_sales_salesman.sudo().notification_type = "email"
        deals = self._create_deals_in_step(self.stage_team1_1, 5)
        self._commit()
        with self.mock_mail_gateway():
            told = self._new_messages_to(
                self.user_sales_salesman,
                lambda: deals.write({"stage_id": self.stage_team1_2.id}),
            )
        self.assertEqual(len(told), 1)
        self.assertEqual(told.notification_ids.notification_type, "email")
        mails = self._new_mails.filtered(
            lambda mail: self.user_sales_salesman.partner_id in mail.recipient_ids
        )
        self.assertEqual(len(mails), 1, "one email for 15 activities")
        self.assertIn("New activities for you (15)", mails.subject)
        self.assertFalse(self._per_activity_messages())

    @users("user_deal_manager")
    def test_manager_single_move_tells_team_leader_once(self):
        # a deal imported at step 2, sent back to step 1: its entry gives the
        # salesperson "Send the contract" and the team leader "Get the signed copy"
        deal = self._create_deals_in_step(self.stage_team1_2)
        self._commit()
        before = self._messages_to(self.user_sales_salesman)
        leader_told = self._new_messages_to(
            self.user_sales_manager, lambda: deal.write({"stage_id": self.stage_team1_1.id})
        )
        self.assertEqual(len(leader_told), 1)
        self.assertEqual(leader_told.subject, "New activity for you: Get the signed copy (Deal 0)")
        self.assertIn(f"res_id={deal.id}", leader_told.body)
        self.assertEqual(leader_told.body.count("<li>"), 1)
        salesperson_told = self._messages_to(self.user_sales_salesman) - before
        self.assertEqual(len(salesperson_told), 1)
        self.assertIn("Send the contract", salesperson_told.subject)
        self.assertFalse(self._per_activity_messages())

    @users("user_sales_manager")
    def test_mover_not_told_of_own_activities(self):
        deal = self._create_deals_in_step(self.stage_team1_2)
        self._commit()
        before = self._messages_to(self.user_sales_salesman)
        leader_told = self._new_messages_to(
            self.user_sales_manager, lambda: deal.write({"stage_id": self.stage_team1_1.id})
        )
        signed = self._deal_activities(deal, ("summary", "=", "Get the signed copy"))
        self.assertEqual(signed.user_id, self.user_sales_manager)
        self.assertFalse(leader_told, "the team leader moved the deal: nothing to tell them")
        self.assertEqual(len(self._messages_to(self.user_sales_salesman) - before), 1)

    @users("user_sales_salesman")
    def test_salesperson_moving_own_deals_told_nothing(self):
        deals = self._create_deals(3)
        told = self._new_messages_to(
            self.user_sales_salesman, lambda: deals.write({"stage_id": self.stage_team1_2.id})
        )
        self.assertFalse(told)

    def test_assignee_told_in_their_language(self):
        self.env["res.lang"]._activate_lang("ru_RU")
        self.env["ir.module.module"]._load_module_terms(["deal_stages"], ["ru_RU"], overwrite=True)
        self.user_sales_salesman.lang = "ru_RU"
        deals = self._create_deals_in_step(self.stage_team1_1, 2)
        told = self._new_messages_to(
            self.user_sales_salesman,
            lambda: deals.with_user(self.user_deal_manager).write(
                {"stage_id": self.stage_team1_2.id}
            ),
        )
        self.assertEqual(len(told), 1)
        self.assertEqual(told.subject, "Новые активности для вас (6)")
        self.assertIn("По этим сделкам вам назначены новые активности:", told.body)

    def test_activity_done_before_commit_not_told(self):
        deals = self._create_deals_in_step(self.stage_team1_1, 2)

        def move_and_do():
            deals.with_user(self.user_deal_manager).write({"stage_id": self.stage_team1_2.id})
            first = self._deal_activities(deals[0], ("deal_step_id", "=", self.step_2.id))
            first.with_user(self.user_sales_salesman).action_feedback(feedback="Done already")

        told = self._new_messages_to(self.user_sales_salesman, move_and_do)
        self.assertEqual(told.subject, "New activities for you (3)", "the done ones are not news")

    @users("user_deal_manager")
    def test_names_and_summaries_escaped_links_kept(self):
        deal = self._create_deals_in_step(self.stage_team1_1, name="<img src=x onerror=alert(1)>")
        self.step_2.sudo().activity_template_ids.filtered(
            lambda template: template.summary == "Send the invoice"
        ).summary = "<b>Send</b> the invoice"
        told = self._new_messages_to(
            self.user_sales_salesman, lambda: deal.write({"stage_id": self.stage_team1_2.id})
        )
        self.assertEqual(len(told), 1)
        self.assertNotIn("<img", told.body)
        self.assertNotIn("<b>", told.body)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;", told.body)
        self.assertIn("&lt;b&gt;Send&lt;/b&gt; the invoice", told.body)
        link = f'href="{deal.get_base_url()}/mail/view?model=crm.lead&amp;res_id={deal.id}"'
        self.assertEqual(told.body.count(link), 3, "each activity links to its deal")

    @users("user_deal_manager")
    def test_activity_by_hand_keeps_odoo_email(self):
        deal = self._create_deals_in_step(self.stage_team1_1)
        told = self._new_messages_to(
            self.user_sales_salesman,
            lambda: deal.activity_schedule(
                "mail.mail_activity_data_todo",
                summary="Call me back",
                user_id=self.user_sales_salesman.id,
            ),
        )
        self.assertEqual(told.subject, '"Deal 0: Call me back" assigned to you')

    @users("user_deal_manager")
    def test_import_moving_deals_tells_once(self):
        deals = self._create_deals_in_step(self.stage_team1_1, 5)
        result = {}
        told = self._new_messages_to(
            self.user_sales_salesman,
            lambda: result.update(
                self.env["crm.lead"].load(
                    [".id", "stage_id/.id"],
                    [[str(deal.id), str(self.stage_team1_2.id)] for deal in deals],
                )
            ),
        )
        self.assertFalse(result["messages"])
        self.assertEqual(deals.deal_step_id, self.step_2)
        self.assertEqual(len(told), 1)
        self.assertEqual(told.subject, "New activities for you (15)")
        self.assertFalse(self._per_activity_messages())

    def test_system_move_told_by_odoobot(self):
        deals = self._create_deals_in_step(self.stage_team1_1, 2)
        told = self._new_messages_to(
            self.user_sales_salesman,
            lambda: deals.with_user(SUPERUSER_ID).write({"stage_id": self.stage_team1_2.id}),
        )
        self.assertEqual(told.subject, "New activities for you (6)")
        self.assertEqual(told.author_id, self.env.ref("base.partner_root"))

    def test_order_change_to_step_with_server_action_tells_once(self):
        """The move back runs the step's server action in a savepoint, then the
        change's activities are created: one message for both."""
        self.step_2.write(
            {
                "server_action_ids": [
                    Command.create(
                        {
                            "name": "Nothing to do",
                            "model_id": self.env["ir.model"]._get_id("crm.lead"),
                            "state": "code",
                            "code": "pass",
                        }
                    )
                ],
                "activity_template_ids": [
                    Command.create(
                        {
                            "trigger": "change",
                            "activity_type_id": self.activity_type_todo.id,
                            "summary": "Re-issue the invoice for the difference",
                        }
                    )
                ],
            }
        )
        self.script.return_step_increase_id = self.step_2
        deal = self._create_deals_in_step(self.stage_prepayment)
        told = self._new_messages_to(
            self.user_sales_salesman,
            lambda: (
                self.env["crm.deal.order.change"]
                .with_user(self.user_deal_manager)
                .create({"lead_id": deal.id, "amount_delta": 10})
            ),
        )
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(len(told), 1, "one message for the transaction")
        self.assertIn("Issue the invoice", told.body)
        self.assertIn("Re-issue the invoice for the difference", told.body)

    def test_archived_fixed_assignee_replaced_by_salesperson(self):
        # step 3 gives "Check the prepayment" to user_sales_leads, archived since
        deals = self._create_deals_in_step(self.stage_team1_2, 2)
        self.user_sales_leads.active = False
        archived_before = self._messages_to(self.user_sales_leads)
        with self.mock_mail_gateway():
            told = self._new_messages_to(
                self.user_sales_salesman,
                lambda: deals.with_user(self.user_deal_manager).write(
                    {"stage_id": self.stage_prepayment.id}
                ),
            )
        check = self._deal_activities(deals, ("summary", "=", "Check the prepayment"))
        self.assertEqual(check.user_id, self.user_sales_salesman, "someone who will see it")
        self.assertEqual(told.subject, "New activities for you (2)")
        self.assertFalse(self._messages_to(self.user_sales_leads) - archived_before)
        self.assertFalse(
            self._new_mails.filtered(
                lambda mail: self.user_sales_leads.partner_id in mail.recipient_ids
            ),
            "nothing emailed to a former employee",
        )
        self.assertIn(
            "The assigned user is archived or deleted: assigned to the salesperson.",
            " ".join(deals[0].message_ids.mapped("body")),
        )

    def test_archived_team_leader_not_told(self):
        leader = mail_new_test_user(
            self.env,
            login="gone_leader",
            name="Gone Leader",
            email="gone.leader@example.com",
            groups="sales_team.group_sale_salesman",
            notification_type="email",
        )
        self.sales_team_1.user_id = leader
        deal = self._create_deals_in_step(self.stage_team1_2)
        leader.active = False
        with self.mock_mail_gateway():
            told = self._new_messages_to(
                leader,
                lambda: deal.with_user(self.user_deal_manager).write(
                    {"stage_id": self.stage_team1_1.id}
                ),
            )
        signed = self._deal_activities(deal, ("summary", "=", "Get the signed copy"))
        self.assertEqual(signed.user_id, leader)
        self.assertFalse(told)
        self.assertFalse(
            self._new_mails.filtered(lambda mail: leader.partner_id in mail.recipient_ids)
        )
