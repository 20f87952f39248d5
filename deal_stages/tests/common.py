from odoo import Command

from odoo.addons.crm.tests.common import TestCrmCommon


class DealStagesCommon(TestCrmCommon):
    """Base for deal_stages tests: crm's users, teams and stages, plus a script.

    Users (from crm/sales_team): ``user_sales_salesman`` (own documents),
    ``user_sales_leads`` (all documents), ``user_sales_manager`` (administrator,
    leader of ``sales_team_1``).

    ``script`` runs ``sales_team_1`` through three steps:

    ====  ==================  =================================================
    step  stage               entry activities
    ====  ==================  =================================================
    1     stage_team1_1       "Send the contract" (1 day, salesperson, once),
                              "Get the signed copy" (3 working days, leader, once)
    2     stage_team1_2       "Issue the invoice" (today, salesperson, always)
    3     stage_prepayment    "Check the prepayment" (3 working days,
                              user_sales_leads, always)
    ====  ==================  =================================================
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.activity_type_todo = cls.env.ref("mail.mail_activity_data_todo")
        cls.activity_type_upload = cls.env.ref("mail.mail_activity_data_upload_document")
        cls.stage_prepayment = cls.env["crm.stage"].create(
            {"name": "Prepayment", "sequence": 6, "team_ids": [cls.sales_team_1.id]}
        )
        cls.script = cls.env["crm.deal.script"].create(
            {
                "name": "Test process",
                "team_ids": [cls.sales_team_1.id],
                "step_ids": [
                    Command.create(
                        {
                            "sequence": 1,
                            "stage_id": cls.stage_team1_1.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "sequence": 1,
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Send the contract",
                                        "deadline_days": 1,
                                    }
                                ),
                                Command.create(
                                    {
                                        "sequence": 2,
                                        "activity_type_id": cls.activity_type_upload.id,
                                        "summary": "Get the signed copy",
                                        "deadline_days": 3,
                                        "deadline_working_days": True,
                                        "assign_to": "team_leader",
                                    }
                                ),
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "sequence": 2,
                            "stage_id": cls.stage_team1_2.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Issue the invoice",
                                        "reentry": "always",
                                    }
                                ),
                            ],
                        }
                    ),
                    Command.create(
                        {
                            "sequence": 3,
                            "stage_id": cls.stage_prepayment.id,
                            "activity_template_ids": [
                                Command.create(
                                    {
                                        "activity_type_id": cls.activity_type_todo.id,
                                        "summary": "Check the prepayment",
                                        "deadline_days": 3,
                                        "deadline_working_days": True,
                                        "assign_to": "user",
                                        "user_id": cls.user_sales_leads.id,
                                        "reentry": "always",
                                    }
                                ),
                            ],
                        }
                    ),
                ],
            }
        )
        cls.step_1, cls.step_2, cls.step_3 = cls.script.step_ids.sorted("sequence")
        # deals may go back to any earlier step (the gates' tests narrow this)
        cls.step_2.back_step_ids = cls.step_1
        cls.step_3.back_step_ids = cls.step_1 + cls.step_2

    def _create_deals(self, count=1, **values):
        """Opportunities of ``sales_team_1`` owned by the salesperson."""
        return self.env["crm.lead"].create(self._deal_vals_list(count, values))

    def _create_deals_in_step(self, stage, count=1, **values):
        """Deals put straight in ``stage`` by the system (as an import of deals
        in progress): salespeople create deals at the first step only."""
        vals_list = self._deal_vals_list(count, dict(values, stage_id=stage.id))
        return self.env["crm.lead"].sudo().create(vals_list).sudo(False)

    def _deal_vals_list(self, count, values):
        return [
            {
                "name": f"Deal {index}",
                "type": "opportunity",
                "team_id": self.sales_team_1.id,
                "user_id": self.user_sales_salesman.id,
                **values,
            }
            for index in range(count)
        ]

    def _script_activities(self, deals):
        return (
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "crm.lead"),
                    ("res_id", "in", deals.ids),
                    ("deal_script_activity_id", "!=", False),
                ]
            )
        )
