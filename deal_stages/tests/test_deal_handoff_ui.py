from odoo.tests import HttpCase, tagged

from .common import DealHandoffCommon


@tagged("post_install", "-at_install", "deal_stages")
class TestDealHandoffUi(DealHandoffCommon, HttpCase):
    def test_failed_handoff_retried_from_the_deal(self):
        self.endpoint.name = "1C Tour"
        deal = self._deal_at_step_2()
        handoff = deal.deal_handoff_ids
        self.receiver.state.plan(401)
        self._deliver()
        self.assertEqual(handoff.state, "failed")
        self.start_tour(
            f"/odoo/action-crm.crm_lead_action_pipeline/{deal.id}",
            "deal_stages_handoff",
            login=self.user_sales_salesman.login,
        )
        handoff.invalidate_recordset()
        self.assertEqual(handoff.state, "pending")
        self._deliver()
        self.assertEqual(handoff.state, "acknowledged")
