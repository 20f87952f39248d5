from odoo.exceptions import ValidationError
from odoo.tests import tagged, users, warmup

from odoo.addons.deal_stages.tools import DEAL_NESTED_WRITE, DealGateError

from .common import DealGateCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealAutoAdvance(DealGateCommon):
    """A step's condition, once true and its gate met, moves the deal on.

    On the gates' script (step 1: "Signed contract attached" to tick; step 2:
    Expected Revenue and Customer filled in; step 3: its activities done):

    ====  =====================================  ===========================
    step  auto-advance condition                 name in the history
    ====  =====================================  ===========================
    1     expected revenue > 0                   "Amount agreed"
    2     customer set                           "Customer known"
    3     always (the last step: never left)     —
    ====  =====================================  ===========================
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_1.write(
            {
                "auto_advance_domain": "[('expected_revenue', '>', 0)]",
                "auto_advance_label": "Amount agreed",
            }
        )
        cls.step_2.write(
            {
                "auto_advance_domain": "[('partner_id', '!=', False)]",
                "auto_advance_label": "Customer known",
            }
        )
        cls.step_3.auto_advance_domain = "[('id', '!=', 0)]"
        cls.customer = cls.env["res.partner"].create({"name": "Auto Customer"})

    @users("user_sales_salesman")
    def test_condition_and_gate_met_moves_one_step(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        self.assertEqual(deal.deal_step_id, self.step_1, "condition false: the deal stays")
        deal.expected_revenue = 1000
        self.assertEqual(deal.deal_step_id, self.step_2, "moved by itself, one step only")
        stay = self._auto_stays(deal)
        self.assertEqual(len(stay), 1)
        self.assertEqual(stay.from_step_id, self.step_1)
        self.assertEqual(stay.step_id, self.step_2)
        self.assertEqual(stay.note, "Condition met: Amount agreed")
        self.assertEqual(stay.user_id, self.user_sales_salesman, "the write that triggered it")
        # the entry work of the step reached automatically is done as for a drag
        self.assertIn("Issue the invoice", self._script_activities(deal).mapped("summary"))

    @users("user_sales_salesman")
    def test_gate_unmet_stays_until_met(self):
        deal = self._create_deals()
        # no error for the salesperson: the requirement is simply still missing
        deal.expected_revenue = 1000
        self.assertEqual(deal.deal_step_id, self.step_1)
        self.assertFalse(self._auto_stays(deal))
        self.assertFalse(deal._deal_auto_advance(), "evaluated again: still blocked")
        # ticking the last missing item is a change of the deal: it moves on
        self._tick(deal, self.check_signed)
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(len(self._auto_stays(deal)), 1)

    @users("user_sales_salesman")
    def test_chained_steps(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        deal.write({"expected_revenue": 1000, "partner_id": self.customer.id})
        # step 1's condition, then step 2's (its gate: revenue and customer)
        self.assertEqual(deal.deal_step_id, self.step_3)
        stays = self._auto_stays(deal).sorted("id")
        self.assertEqual(stays.step_id, self.step_2 + self.step_3)
        self.assertEqual(
            stays.mapped("note"), ["Condition met: Amount agreed", "Condition met: Customer known"]
        )
        # the last step is never left by itself, even with its condition true
        self.assertFalse(deal._deal_auto_advance())
        self.assertEqual(deal.stage_id, self.stage_prepayment)
        self.assertEqual(deal.won_status, "pending")

    @users("user_sales_salesman")
    def test_lost_deal_not_moved(self):
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        deal.action_set_lost()
        deal.expected_revenue = 1000
        self.assertFalse(deal.active)
        self.assertEqual(deal.deal_step_id, self.step_1)
        self.assertFalse(deal._deal_auto_advance())
        self.assertFalse(self._auto_stays(deal))
        # restored, it is evaluated again: it moves on
        deal.action_restore()
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(len(self._auto_stays(deal)), 1)

    @users("user_sales_salesman")
    def test_required_condition_blocks_a_manual_move(self):
        self.step_1.sudo().auto_advance_required = True
        deal = self._create_deals()
        self._tick(deal, self.check_signed)
        self.assertEqual(
            deal._deal_missing_requirements(self.stage_team1_2),
            ["Wait until the condition “Amount agreed” is met."],
        )
        with self.assertRaises(DealGateError) as refusal:
            deal.stage_id = self.stage_team1_2
        self.assertIn("Amount agreed", str(refusal.exception))
        self.assertEqual(deal.deal_step_id, self.step_1)
        # once it holds, the deal moves on by itself
        deal.expected_revenue = 1000
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(len(self._auto_stays(deal)), 1)
        # not required: the salesperson may move the deal before it holds
        self.step_1.sudo().auto_advance_required = False
        other = self._create_deals()
        self._tick(other, self.check_signed)
        other.stage_id = self.stage_team1_2
        self.assertEqual(other.deal_step_id, self.step_2)

    def test_invalid_condition_refused(self):
        # a published version is fixed: conditions are edited on a new version
        Script = self.env["crm.deal.script"].with_user(self.user_sales_manager)
        draft = Script.browse(Script.browse(self.script.id).action_new_version())
        step = draft.step_ids.filtered(lambda s: s.step_key == self.step_1.step_key)
        for condition in (
            "[('no_such_field', '=', 1)]",
            "[('expected_revenue', '>', 0)",
            "42",
            "[('expected_revenue', 'is about', 0)]",
        ):
            with self.subTest(condition=condition), self.assertRaises(ValidationError) as error:
                step.auto_advance_domain = condition
            self.assertIn("auto-advance condition of the step", str(error.exception))
        self.assertEqual(step.auto_advance_domain, "[('expected_revenue', '>', 0)]")
        # the domain widget's expressions are accepted
        step.auto_advance_domain = "[('user_id', '=', uid)]"

    @users("user_sales_salesman")
    def test_new_deal_created_ready_moves_on(self):
        self.check_signed.sudo().required = False
        deal = self._create_deals(expected_revenue=500)
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(len(self._auto_stays(deal)), 1)

    def test_activities_done_move_the_deal(self):
        self.check_signed.required = False
        self.step_1.require_activities_done = True
        deal = self._create_deals(expected_revenue=500)
        self.assertEqual(deal.deal_step_id, self.step_1, "the step's activities are open")
        first, second = self._script_activities(deal).sorted("id")
        first.with_user(first.user_id).action_feedback("Sent")
        self.assertEqual(deal.deal_step_id, self.step_1)
        # the team leader does the last one: the deal follows, whoever did it
        second.with_user(second.user_id).action_feedback("Signed copy received")
        self.assertEqual(deal.deal_step_id, self.step_2)
        self.assertEqual(self._auto_stays(deal).user_id, second.user_id)

    def test_no_condition_no_move(self):
        self.step_1.auto_advance_domain = False
        deal = self._create_deals().with_user(self.user_sales_salesman)
        self._tick(deal, self.check_signed)
        deal.expected_revenue = 1000
        self.assertEqual(deal.deal_step_id, self.step_1)


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_perf")
class TestDealAutoAdvanceBatch(DealGateCommon):
    """A bridge signals many deals at once: the cost does not grow with them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.step_1.write(
            {
                "auto_advance_domain": "[('expected_revenue', '>', 0)]",
                "auto_advance_label": "Amount agreed",
            }
        )

    def _ready_deals(self, count):
        """Deals of step 1 whose condition and gate hold, not evaluated yet
        (as when a document changed the deals' computed fields)."""
        deals = self._create_deals(count)
        self._tick(deals, self.check_signed)
        deals.sudo().with_context(deal_nested_write=DEAL_NESTED_WRITE).expected_revenue = 100
        self.assertEqual(set(deals.mapped("deal_step_id")), {self.step_1})
        self.env.flush_all()
        self.env.invalidate_all()
        return deals.with_env(self.env)

    def _queries_to_advance(self, deals):
        count, moved = self._count_queries(deals._deal_auto_advance)
        self.assertEqual(set(moved.mapped("deal_step_id")), {self.step_2})
        return moved, count

    @users("user_sales_salesman")
    def test_batch_queries_do_not_grow(self):
        self._queries_to_advance(self._ready_deals(2))  # warm the caches
        small = self._ready_deals(2)
        __, small_count = self._queries_to_advance(small)
        large = self._ready_deals(12)
        # one deal stays: its condition is false
        large[0].sudo().with_context(deal_nested_write=DEAL_NESTED_WRITE).expected_revenue = 0
        self.env.flush_all()
        self.env.invalidate_all()
        moved, large_count = self._queries_to_advance(large)
        self.assertEqual(moved, large[1:])
        self.assertEqual(large[0].deal_step_id, self.step_1)
        self.assertEqual(large_count, small_count, "no query per deal")

    @users("user_sales_salesman")
    @warmup
    def test_batch_query_count(self):
        deals = self._ready_deals(5)
        # the move to the next step and its entry work (activities, note)
        # cost most of it; selecting the deals and their gate a few queries;
        # at commit, one statement brings the time-in-step totals up to date
        with self.assertQueryCount(user_sales_salesman=118):
            deals._deal_auto_advance()
        self.assertEqual(set(deals.mapped("deal_step_id")), {self.step_2})
        auto = deals.sudo().deal_log_ids.filtered(lambda log: log.cause == "auto")
        self.assertEqual(len(auto), 5)
