from odoo.addons.crm.tests.common import TestCrmCommon


class DealStagesCommon(TestCrmCommon):
    """Base for deal_stages tests: crm's users, teams and stages, plus scripts.

    Users (from crm/sales_team): ``user_sales_salesman`` (own documents),
    ``user_sales_leads`` (all documents), ``user_sales_manager`` (administrator).
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.script = cls.env["crm.deal.script"].create(
            {
                "name": "Test process",
                "team_ids": [cls.sales_team_1.id],
            }
        )
