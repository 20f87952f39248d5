import json
from datetime import timedelta

from odoo import Command, fields
from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tests.common import mail_new_test_user


@tagged("post_install", "-at_install", "deal_stages")
class TestDealControlUi(HttpCase):
    def test_supervisor_board_and_time_in_step_tour(self):
        """A team leader in the supervisor group opens the board and the pivot."""
        leader = mail_new_test_user(
            self.env,
            login="tour_team_leader",
            name="Tour Team Leader",
            groups="deal_stages.group_deal_supervisor",
        )
        team = self.env["crm.team"].create({"name": "Tour Control Team", "user_id": leader.id})
        stage_1, stage_2 = self.env["crm.stage"].create(
            [
                {"name": "Tour Step One", "sequence": 1, "team_ids": [team.id]},
                {"name": "Tour Step Two", "sequence": 2, "team_ids": [team.id]},
            ]
        )
        script = self.env["crm.deal.script"].create(
            {
                "name": "Tour control script",
                "team_ids": [team.id],
                "step_ids": [
                    Command.create({"sequence": 1, "stage_id": stage_1.id}),
                    Command.create({"sequence": 2, "stage_id": stage_2.id}),
                ],
            }
        )
        late, _quiet = self.env["crm.lead"].create(
            [
                {"name": name, "type": "opportunity", "team_id": team.id, "user_id": leader.id}
                for name in ("Tour Late Deal", "Tour Quiet Deal")
            ]
        )
        self.assertEqual(late.deal_script_id, script)
        self.env["mail.activity"].create(
            {
                "res_model_id": self.env["ir.model"]._get_id("crm.lead"),
                "res_id": late.id,
                "activity_type_id": self.env.ref("mail.mail_activity_data_todo").id,
                "summary": "Send the contract",
                "user_id": leader.id,
                "date_deadline": fields.Date.today() - timedelta(days=2),
                "deal_step_id": late.deal_step_id.id,
            }
        )
        self.start_tour("/odoo", "deal_stages_control_board", login=leader.login)

    def test_my_deals_at_risk_empty_tour(self):
        """A salesperson without any deal at risk sees the help, not a blank page."""
        seller = mail_new_test_user(
            self.env, login="tour_quiet_seller", groups="sales_team.group_sale_salesman"
        )
        self.start_tour(
            "/odoo/action-deal_stages.crm_lead_action_my_deals_at_risk",
            "deal_stages_my_deals_at_risk_empty",
            login=seller.login,
        )

    def test_board_follows_other_users_tour(self):
        """The board open in a supervisor's browser shows, without a reload,
        the move another user makes from elsewhere (bus notification)."""
        leader = mail_new_test_user(
            self.env,
            login="tour_live_leader",
            name="Tour Live Leader",
            groups="deal_stages.group_deal_supervisor",
        )
        mover = mail_new_test_user(
            self.env,
            login="tour_live_mover",
            name="Tour Live Mover",
            groups="sales_team.group_sale_salesman",
        )
        team = self.env["crm.team"].create(
            {"name": "Tour Live Team", "user_id": leader.id, "member_ids": [Command.link(mover.id)]}
        )
        stage_1, stage_2 = self.env["crm.stage"].create(
            [
                {"name": "Tour Step One", "sequence": 1, "team_ids": [team.id]},
                {"name": "Tour Step Two", "sequence": 2, "team_ids": [team.id]},
            ]
        )
        self.env["crm.deal.script"].create(
            {
                "name": "Tour live script",
                "team_ids": [team.id],
                "step_ids": [
                    Command.create({"sequence": 1, "stage_id": stage_1.id}),
                    Command.create({"sequence": 2, "stage_id": stage_2.id}),
                ],
            }
        )
        moving, _still = self.env["crm.lead"].create(
            [
                {"name": name, "type": "opportunity", "team_id": team.id, "user_id": mover.id}
                for name in ("Tour Moving Deal", "Tour Still Deal")
            ]
        )
        self.assertEqual(moving.stage_id, stage_1)
        # the other user's own API key: their move is theirs, not the browser's
        api_key = (
            self.env["res.users.apikeys"]
            .with_user(mover)
            .sudo()
            ._generate(None, "Deal board tour", fields.Date.today() + timedelta(days=1))
        )
        # the other user's request carries nothing of this browser (no session,
        # hence not the test server's cookie either): let the server take it
        self.http_request_allow_all = True
        self.addCleanup(setattr, self, "http_request_allow_all", False)
        tour = "deal_stages_control_board_live"
        data = {"apiKey": api_key, "dealId": moving.id, "stageId": stage_2.id}
        self.start_tour(
            "/odoo/action-deal_stages.crm_lead_action_deal_control",
            tour,
            login=leader.login,
            code=f"window.dealStagesBoardTour = {json.dumps(data)};"
            f" odoo.startTour({tour!r}, {json.dumps({'stepDelay': 0})})",
        )
        self.assertEqual(moving.stage_id, stage_2)
        stay = moving.deal_log_ids.filtered(lambda log: not log.date_out)
        self.assertEqual(stay.user_id, mover, "moved by the other user")
