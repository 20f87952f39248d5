from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged


@tagged("post_install", "-at_install", "deal_stages")
class TestDealGateUi(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesperson = new_test_user(
            cls.env,
            login="tour_gate_salesperson",
            name="Tour Salesperson",
            groups="sales_team.group_sale_salesman",
        )
        cls.team = cls.env["crm.team"].create(
            {"name": "Tour Gate Team", "member_ids": [Command.link(cls.salesperson.id)]}
        )
        stages = cls.env["crm.stage"].create(
            [
                {"name": name, "sequence": 900 + index, "team_ids": [cls.team.id]}
                for index, name in enumerate(["Tour Contract", "Tour Invoicing", "Tour Payment"])
            ]
        )
        lead_model = cls.env["ir.model"]._get("crm.lead")
        cls.script = cls.env["crm.deal.script"].create(
            {
                "name": "Tour gated process",
                "team_ids": [cls.team.id],
                "step_ids": [
                    Command.create(
                        {
                            "sequence": index,
                            "stage_id": stage.id,
                            "check_ids": [Command.create({"name": "Signed contract attached"})]
                            if index == 0
                            else [],
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "activity_type_id": cls.env.ref(
                                            "mail.mail_activity_data_todo"
                                        ).id,
                                        "summary": "Send the invoice",
                                    }
                                )
                            ]
                            if index == 1
                            else [],
                            # its preview after the move names it in one sentence
                            "mail_template_id": cls.env["mail.template"]
                            .create({"name": "Tour payment due", "model_id": lead_model.id})
                            .id
                            if index == 2
                            else False,
                            "mail_mode": "propose",
                        }
                    )
                    for index, stage in enumerate(stages)
                ],
            }
        )
        cls.stages = stages
        Lead = cls.env["crm.lead"].with_user(cls.salesperson)
        cls.deal = Lead.create(
            {
                "name": "Tour gated deal",
                "type": "opportunity",
                "team_id": cls.team.id,
                "user_id": cls.salesperson.id,
            }
        )
        # a deal already in the next step keeps its column on the board (put
        # there by the system: salespeople create deals at the first step)
        cls.env["crm.lead"].create(
            {
                "name": "Tour other deal",
                "type": "opportunity",
                "team_id": cls.team.id,
                "user_id": cls.salesperson.id,
                "stage_id": stages[1].id,
            }
        )

    def test_refused_drag_completed_in_dialog(self):
        self.start_tour(
            "/odoo/action-crm.crm_lead_action_pipeline",
            "deal_stages_gate_kanban",
            login=self.salesperson.login,
        )
        self.assertEqual(self.deal.stage_id, self.stages[1])
        item = self.deal.deal_check_ids
        self.assertTrue(item.done)
        self.assertEqual(item.done_by_id, self.salesperson)

    def test_guided_deal_form(self):
        self.start_tour(
            f"/odoo/action-crm.crm_lead_action_pipeline/{self.deal.id}",
            "deal_stages_gate_form",
            login=self.salesperson.login,
        )
        self.assertEqual(self.deal.stage_id, self.stages[1])
        self.assertTrue(self.deal.deal_check_ids.done)

    def _call_kw(self, model, method, args, kwargs=None):
        response = self.url_open(
            f"/web/dataset/call_kw/{model}/{method}",
            data=None,
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "id": 1,
                "params": {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
            },
        )
        return response.json()

    def test_rpc_write_refused_with_details(self):
        self.authenticate(self.salesperson.login, self.salesperson.login)
        result = self._call_kw(
            "crm.lead", "write", [[self.deal.id], {"stage_id": self.stages[1].id}]
        )
        error = result["error"]["data"]
        self.assertIn("Signed contract attached", error["message"])
        gate = error["context"]["deal_gate"]
        self.assertEqual(error["context"]["exception_class"], "deal_stages.DealGateError")
        self.assertEqual(gate["deals"][0]["id"], self.deal.id)
        self.assertEqual(gate["deals"][0]["issues"][0]["kind"], "check")
        self.assertFalse(gate["can_override"])
        # a context sent over RPC cannot skip the gate
        result = self._call_kw(
            "crm.lead",
            "write",
            [[self.deal.id], {"stage_id": self.stages[1].id}],
            {"context": {"deal_move": {"cause": "override", "skip_gate": True}}},
        )
        self.assertIn("error", result)
        # nor can a salesperson force the move
        result = self._call_kw(
            "crm.lead", "action_deal_force_stage", [[self.deal.id], self.stages[1].id, "Hurry"]
        )
        self.assertEqual(result["error"]["data"]["name"], "odoo.exceptions.AccessError")
        self.deal.invalidate_recordset()
        self.assertEqual(self.deal.stage_id, self.stages[0])
