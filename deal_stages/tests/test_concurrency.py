import threading
from itertools import pairwise
from unittest.mock import patch

import psycopg2.errors

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import ValidationError
from odoo.modules.registry import Registry
from odoo.orm.environments import Transaction
from odoo.tests import BaseCase, get_db_name, tagged
from odoo.tools import mute_logger

from odoo.addons.base.models.ir_mail_server import IrMail_Server

from .common import DealStagesCommon

CONCURRENCY_ERRORS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.LockNotAvailable,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.UniqueViolation,
)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_concurrency")
class TestDealConcurrency(BaseCase):
    """Real transactions on real cursors, as two Odoo workers would run them.

    The data is committed (other cursors must see it) and removed afterwards.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def _env(self, cr):
        """A superuser environment on ``cr``, usable in any thread.

        ``Environment`` would look the registry up by name, under a lock the
        test runner may hold while tests run: give the transaction ours.
        """
        if cr.transaction is None:
            cr.transaction = Transaction(self.registry)
        return api.Environment(cr, SUPERUSER_ID, {})

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = self._env(cr)
            todo = env.ref("mail.mail_activity_data_todo")
            self.team_id = env["crm.team"].create({"name": "Concurrency team"}).id
            stages = env["crm.stage"].create(
                [{"name": f"Concurrency {index}", "sequence": 900 + index} for index in range(1, 4)]
            )
            self.stage_ids = stages.ids
            self.script_id = (
                env["crm.deal.script"]
                .create(
                    {
                        "name": "Concurrency script",
                        "strict_order": False,
                        "team_ids": [Command.link(self.team_id)],
                        "step_ids": [
                            Command.create(
                                {
                                    "sequence": index,
                                    "stage_id": stage.id,
                                    "activity_template_ids": [
                                        Command.create(
                                            {
                                                "activity_type_id": todo.id,
                                                "summary": f"Work of {stage.name}",
                                                "reentry": "always",
                                            }
                                        )
                                    ],
                                }
                            )
                            for index, stage in enumerate(stages, 1)
                        ],
                    }
                )
                .id
            )
            self.deal_id = (
                env["crm.lead"]
                .create(
                    {
                        "name": "Concurrent deal",
                        "type": "opportunity",
                        "team_id": self.team_id,
                        "stage_id": self.stage_ids[0],
                        "user_id": env.ref("base.user_admin").id,
                    }
                )
                .id
            )
        self.addCleanup(self._remove_data)

    def _remove_data(self):
        with self.registry.cursor() as cr:
            env = self._env(cr)
            deals = (
                env["crm.lead"]
                .with_context(active_test=False)
                .search([("team_id", "=", self.team_id)])
            )
            env["mail.activity"].search(
                [("res_model", "=", "crm.lead"), ("res_id", "in", deals.ids)]
            ).unlink()
            env["mail.mail"].search(
                [("model", "=", "crm.lead"), ("res_id", "in", deals.ids)]
            ).unlink()
            deals.unlink()
            env["crm.deal.script"].browse(self.script_id).unlink()
            env["crm.team"].browse(self.team_id).unlink()
            env["crm.stage"].browse(self.stage_ids).unlink()

    def _state(self):
        """(stage id, [(from stage, stage, open?)...], {activity summary: count})."""
        with self.registry.cursor() as cr:
            env = self._env(cr)
            deal = env["crm.lead"].browse(self.deal_id)
            logs = env["crm.deal.stage.log"].search(
                [("lead_id", "=", deal.id)], order="date_in, id"
            )
            chain = [(log.from_stage_id.id, log.stage_id.id, not log.date_out) for log in logs]
            for previous, log in pairwise(logs):
                self.assertEqual(previous.date_out, log.date_in, "gap in the history")
            activities = env["mail.activity"].search(
                [("res_model", "=", "crm.lead"), ("res_id", "=", deal.id)]
            )
            summaries = {}
            for activity in activities:
                summaries[activity.summary] = summaries.get(activity.summary, 0) + 1
            return deal.stage_id.id, chain, summaries

    def _move_in_thread(self, stage_id, before_write, after_write, outcome):
        """Move the deal in a new transaction; ``outcome`` gets the result."""

        def run():
            try:
                with self.registry.cursor() as cr:
                    env = self._env(cr)
                    deal = env["crm.lead"].browse(self.deal_id)
                    # reading starts the transaction's snapshot
                    self.assertTrue(deal.stage_id)
                    before_write()
                    deal.write({"stage_id": stage_id})
                    env.flush_all()
                    after_write()
            except CONCURRENCY_ERRORS as exc:
                outcome["error"] = exc
            except Exception as exc:  # noqa: BLE001 - reported by the test
                outcome["unexpected"] = exc
            else:
                outcome["done"] = True

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    @mute_logger("odoo.sql_db")
    def test_same_deal_moved_by_two_transactions(self):
        """The second writer fails cleanly; nothing of it is half-written."""
        first_wrote = threading.Event()
        second_started = threading.Event()
        first, second = {}, {}
        t1 = self._move_in_thread(
            self.stage_ids[1],
            second_started.wait,
            # keep the first transaction open while the second one writes
            lambda: (first_wrote.set(), threading.Event().wait(1.0)),
            first,
        )
        t2 = self._move_in_thread(
            self.stage_ids[2],
            lambda: (second_started.set(), first_wrote.wait(10)),
            lambda: None,
            second,
        )
        t1.join(30)
        t2.join(30)
        self.assertFalse(first.get("unexpected") or second.get("unexpected"))
        self.assertTrue(first.get("done"))
        self.assertIn("error", second, "the second transaction must not commit over the first")
        stage, chain, activities = self._state()
        self.assertEqual(stage, self.stage_ids[1])
        self.assertEqual(
            chain,
            [(False, self.stage_ids[0], False), (self.stage_ids[0], self.stage_ids[1], True)],
        )
        # the activity of the step left is cancelled (cancel_activities_on_exit),
        # the one of the step entered exists once
        self.assertEqual(activities, {"Work of Concurrency 2": 1})

    def test_two_deadline_runs_at_once_tell_once(self):
        """Two runs of the deadline cron at once (a manual run beside the
        scheduled one, on two workers): the second skips the deals the first
        holds, and their assignee is told once."""
        with self.registry.cursor() as cr:
            # the deal's warning and deadline have passed
            cr.execute(
                """UPDATE crm_lead
                      SET deal_sla_warning_date = now() at time zone 'UTC' - interval '2 hours',
                          deal_sla_deadline = now() at time zone 'UTC' - interval '1 hour',
                          deal_sla_next_check = now() at time zone 'UTC' - interval '2 hours',
                          deal_sla_level = 0, deal_sla_state = 'ok'
                    WHERE id = %s""",
                [self.deal_id],
            )
            cr.execute("SELECT COALESCE(max(id), 0) FROM mail_message")
            last_message_id = cr.fetchone()[0]
            partner_id = self._env(cr).ref("base.user_admin").partner_id.id
        self.addCleanup(self._remove_messages_after, last_message_id)
        first_cr, second_cr = self.registry.cursor(), self.registry.cursor()
        try:
            first, _more = self._env(first_cr)["crm.lead"]._deal_sla_process_batch(limit=200)
            # the first run has not committed yet: its deals are locked (were
            # they not skipped, the second run would wait: fail instead)
            second_cr.execute("SET LOCAL lock_timeout = '5s'")
            second, _more = self._env(second_cr)["crm.lead"]._deal_sla_process_batch(limit=200)
            first_cr.commit()
            second_cr.commit()
        finally:
            first_cr.close()
            second_cr.close()
        self.assertEqual((first, second), (1, 0), "the second run skips the deal held")
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT m.subject
                     FROM mail_message m
                     JOIN mail_message_res_partner_rel rel ON rel.mail_message_id = m.id
                    WHERE m.id > %s AND m.message_type = 'user_notification'
                      AND rel.res_partner_id = %s""",
                [last_message_id, partner_id],
            )
            subjects = [subject for (subject,) in cr.fetchall()]
        # the warning and the breach: two activities, one message; the
        # supervisors' message of the breach (the administrator is one), once
        self.assertEqual(sorted(subjects), ["Deals stalled: 1", "New activities for you (2)"])

    def _remove_messages_after(self, message_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM mail_message WHERE id > %s AND model IS NULL"
                " AND message_type = 'user_notification'",
                [message_id],
            )

    @mute_logger("odoo.sql_db")
    def test_loser_is_retried_by_odoo(self):
        """With Odoo's retry (as an RPC/HTTP request gets), both moves apply in turn."""
        first_wrote = threading.Event()
        results = {}

        def first():
            with self.registry.cursor() as cr:
                env = self._env(cr)
                env["crm.lead"].browse(self.deal_id).write({"stage_id": self.stage_ids[1]})
                env.flush_all()
                first_wrote.set()
                threading.Event().wait(0.5)

        tries = []

        def run_second():
            # what odoo.service.model.retrying does for every RPC/HTTP call
            # (not called as is: it resets the registry, under the lock the
            # test runner holds)
            first_wrote.wait(10)
            for _attempt in range(5):
                tries.append(1)
                try:
                    with self.registry.cursor() as cr:
                        env = self._env(cr)
                        env["crm.lead"].browse(self.deal_id).write({"stage_id": self.stage_ids[2]})
                        env.flush_all()
                except psycopg2.errors.SerializationFailure:
                    threading.Event().wait(0.2)
                    continue
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    results["second"] = exc
                    return
                results["second"] = True
                return

        t1 = threading.Thread(target=first)
        t2 = threading.Thread(target=run_second)
        t1.start()
        t2.start()
        t1.join(30)
        t2.join(60)
        self.assertIs(results.get("second"), True)
        self.assertGreaterEqual(len(tries), 2, "the second move was retried")
        stage, chain, activities = self._state()
        self.assertEqual(stage, self.stage_ids[2])
        s1, s2, s3 = self.stage_ids
        self.assertEqual(chain, [(False, s1, False), (s1, s2, False), (s2, s3, True)])
        self.assertEqual(activities, {"Work of Concurrency 3": 1})

    @mute_logger("odoo.sql_db")
    def test_one_open_stay_per_deal_in_database(self):
        """Even written around the ORM, a second open stay is refused."""
        with self.registry.cursor() as cr:
            env = self._env(cr)
            with self.assertRaises(ValidationError), cr.savepoint():
                try:
                    env["crm.deal.stage.log"].create(
                        {"lead_id": self.deal_id, "stage_id": self.stage_ids[1]}
                    )
                    env.flush_all()
                except psycopg2.errors.UniqueViolation as exc:
                    raise ValidationError(str(exc)) from exc

    def _race(self, operation):
        """``operation(env)`` in two transactions: the second one's snapshot is
        taken before the first commits, its operation runs after.

        :return: (exception of the second, result of its retry by Odoo)
        """
        with self.registry.cursor() as cr_second:
            env_second = self._env(cr_second)
            # reading starts the second transaction's snapshot
            self.assertTrue(env_second["crm.lead"].browse(self.deal_id).stage_id)
            with self.registry.cursor() as cr_first:
                operation(self._env(cr_first))
            try:
                with cr_second.savepoint():
                    operation(env_second)
                    env_second.flush_all()
            except CONCURRENCY_ERRORS as exc:
                error = exc
            else:
                error = None
            cr_second.rollback()
        # what odoo.service.model.retrying does with a serialization failure
        with self.registry.cursor() as cr_retry:
            retried = operation(self._env(cr_retry))
        return error, retried

    @mute_logger("odoo.sql_db")
    def test_two_order_changes_at_once_get_two_numbers(self):
        """L9: the loser is retried (a serialization failure), never a duplicate number."""

        def record_change(env):
            change = env["crm.deal.order.change"].create(
                {"lead_id": self.deal_id, "change_type": "other", "description": "x"}
            )
            env.flush_all()
            return change.sequence_number

        error, number = self._race(record_change)
        self.assertIsInstance(error, psycopg2.errors.SerializationFailure, "retried by Odoo")
        self.assertEqual(number, 2)
        with self.registry.cursor() as cr:
            changes = self._env(cr)["crm.deal.order.change"].search(
                [("lead_id", "=", self.deal_id)]
            )
            self.assertEqual(sorted(changes.mapped("sequence_number")), [1, 2])

    @mute_logger("odoo.sql_db")
    def test_two_first_ticks_at_once(self):
        """L9: two users tick an item added after the deal entered its step:
        the loser is retried, never a unique violation."""
        with self.registry.cursor() as cr:
            env = self._env(cr)
            step = env["crm.deal.script.step"].search(
                [("script_id", "=", self.script_id), ("stage_id", "=", self.stage_ids[0])]
            )
            check_id = (
                env["crm.deal.script.check"]
                .create({"step_id": step.id, "name": "Contract signed"})
                .id
            )
            # the deal's row of it is made at the first tick (the item came
            # with no row, as for a deal that entered before it existed)
            env["crm.lead"].browse(self.deal_id).deal_check_ids.unlink()

        def tick(env):
            env["crm.lead"].browse(self.deal_id).action_deal_tick_check(check_id)
            env.flush_all()
            return env["crm.deal.check"].search([("lead_id", "=", self.deal_id)]).mapped("done")

        error, done = self._race(tick)
        self.assertIsInstance(error, psycopg2.errors.SerializationFailure, "retried by Odoo")
        self.assertEqual(done, [True], "one row, ticked")

    def _message_count(self):
        with self.registry.cursor() as cr:
            return self._env(cr)["mail.message"].search_count(
                [("model", "=", "crm.lead"), ("res_id", "=", self.deal_id)]
            )

    def test_crash_in_automation_rule_rolls_back_the_move(self):
        """An automation rule of the administrator that crashes undoes the whole
        move, as in Odoo (the step's own side effects are isolated, below)."""
        with self.registry.cursor() as cr:
            env = self._env(cr)
            action = self._crash_action(env, "1 / 0")
            rule = env["base.automation"].create(
                {
                    "name": "Crash on stage change",
                    "model_id": env["ir.model"]._get_id("crm.lead"),
                    "trigger": "on_stage_set",
                    "trigger_field_ids": [
                        Command.set([env["ir.model.fields"]._get("crm.lead", "stage_id").id])
                    ],
                    "action_server_ids": [Command.link(action.id)],
                }
            )
            self.addCleanup(self._remove_rule, rule.id)
        before, messages = self._state(), self._message_count()
        with self.assertRaises(Exception) as caught, self.registry.cursor() as cr:
            env = self._env(cr)
            env["crm.lead"].browse(self.deal_id).write({"stage_id": self.stage_ids[1]})
            env.flush_all()
        self.assertIn("division", str(caught.exception))
        # nothing of the move is left: stage, history, activities, notes
        self.assertEqual(self._state(), before)
        self.assertEqual(self._message_count(), messages)

    def test_crash_in_step_server_action_is_isolated(self):
        """A step's server action that crashes is undone alone: the move and
        the rest of the entry work are kept, the failure is reported."""
        with self.registry.cursor() as cr:
            env = self._env(cr)
            action = self._crash_action(env, "records.write({'priority': '3'})\n1 / 0")
            step = env["crm.deal.script.step"].search(
                [("script_id", "=", self.script_id), ("stage_id", "=", self.stage_ids[1])]
            )
            step.server_action_ids = [Command.link(action.id)]
        messages = self._message_count()
        with (
            self.registry.cursor() as cr,
            mute_logger("odoo.addons.deal_stages.models.crm_lead_deal_security"),
        ):
            env = self._env(cr)
            env["crm.lead"].browse(self.deal_id).write({"stage_id": self.stage_ids[1]})
            env.flush_all()
        stage_id, chain, summaries = self._state()
        self.assertEqual(stage_id, self.stage_ids[1])
        self.assertTrue(chain[-1][2], "the new stay is open")
        self.assertTrue(summaries, "the step's activities were created")
        with self.registry.cursor() as cr:
            deal = self._env(cr)["crm.lead"].browse(self.deal_id)
            self.assertNotEqual(deal.priority, "3", "the crashed action left nothing")
            self.assertIn("Crash on entry", " ".join(deal.message_ids.mapped("body")))
        self.assertGreater(self._message_count(), messages)

    def _crash_action(self, env, code):
        action = env["ir.actions.server"].create(
            {
                "name": "Crash on entry",
                "model_id": env["ir.model"]._get_id("crm.lead"),
                "state": "code",
                "code": code,
            }
        )
        self.addCleanup(self._remove_action, action.id)
        return action

    def _remove_rule(self, rule_id):
        with self.registry.cursor() as cr:
            self._env(cr)["base.automation"].browse(rule_id).unlink()

    def _remove_action(self, action_id):
        with self.registry.cursor() as cr:
            # exists(): a rule removed first took its actions with it
            self._env(cr)["ir.actions.server"].browse(action_id).exists().unlink()


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_concurrency")
class TestDealFaults(DealStagesCommon):
    def test_smtp_down_does_not_block_moves(self):
        """Customer emails of a step wait in the queue; a dead SMTP fails them only."""
        customer = self.env["res.partner"].create(
            {"name": "Customer", "email": "customer@example.com"}
        )
        template = self.env["mail.template"].create(
            {
                "name": "Invoice issued",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "subject": "Invoice for {{ object.name }}",
                "partner_to": "{{ object.partner_id.id }}",
                "body_html": "<p>Your invoice is issued.</p>",
            }
        )
        # the step's own customer message (customer-messages feature) and an
        # admin's "send email" action on the step: both must queue, not block
        send = self.env["ir.actions.server"].create(
            {
                "name": "Send the invoice email",
                "model_id": self.env["ir.model"]._get_id("crm.lead"),
                "state": "mail_post",
                "template_id": template.id,
                "mail_post_method": "email",
            }
        )
        self.step_2.write(
            {"mail_template_id": template.id, "server_action_ids": [Command.link(send.id)]}
        )
        deal = self._create_deals(partner_id=customer.id)
        with (
            patch.object(
                IrMail_Server, "_connect__", side_effect=ConnectionRefusedError("SMTP down")
            ),
            mute_logger("odoo.addons.mail.models.mail_mail"),
        ):
            deal.write({"stage_id": self.stage_team1_2.id})
            self.env.flush_all()
            mails = self.env["mail.mail"].search(
                [("model", "=", "crm.lead"), ("res_id", "=", deal.id)]
            )
            self.assertTrue(mails, "the customer email is queued")
            mails.send()
        self.assertEqual(deal.stage_id, self.stage_team1_2)
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(
            deal.deal_log_ids.filtered(lambda log: not log.date_out).stage_id, self.stage_team1_2
        )
        self.assertEqual(set(mails.mapped("state")), {"exception"})
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))
