from odoo.tests import tagged, users, warmup

from .common import DealStagesCommon


@tagged("post_install", "-at_install", "deal_stages", "deal_stages_perf")
class TestDealPerformances(DealStagesCommon):
    """The engine works on batches: its cost does not grow with the batch."""

    def _queries_to_move(self, deals, stage):
        self.env.flush_all()
        self.env.invalidate_all()
        before = self.env.cr.sql_log_count
        deals.write({"stage_id": stage.id})
        self.env.flush_all()
        return self.env.cr.sql_log_count - before

    @users("user_sales_salesman")
    @warmup
    def test_batch_move_queries_do_not_grow(self):
        small = self._create_deals(20)
        large = self._create_deals(200)
        # the salesperson moves deals assigned to a colleague: no notification
        # noise, only the engine's own work (log rows, activities, note)
        small_count = self._queries_to_move(small, self.stage_team1_2)
        large_count = self._queries_to_move(large, self.stage_team1_2)
        self.assertEqual(len(self._script_activities(large)), 200)
        # the ORM writes rows in chunks (a few statements per 100 rows): the
        # engine itself adds no per-deal query
        self.assertLessEqual(large_count, small_count + 12)

    @users("user_sales_salesman")
    @warmup
    def test_single_move_query_count(self):
        deal = self._create_deals()
        self.env.flush_all()
        self.env.invalidate_all()
        with self.assertQueryCount(user_sales_salesman=85):
            deal.write({"stage_id": self.stage_team1_2.id})
            self.env.flush_all()
