from odoo.exceptions import AccessError
from odoo.tests import tagged, users

from .common import DealStagesCommon


@tagged("deal_stages")
class TestCrmDealScript(DealStagesCommon):
    @users("user_sales_manager")
    def test_manager_manages_scripts(self):
        script = self.env["crm.deal.script"].create(
            {"name": "Export deals", "team_ids": [self.sales_team_1.id]}
        )
        self.assertEqual(script.company_id, self.env.company)
        script.write({"note": "<p>For foreign customers</p>"})
        script.action_archive()
        self.assertFalse(script.active)
        script.unlink()
        self.assertFalse(script.exists())

    @users("user_sales_salesman")
    def test_salesperson_reads_but_cannot_create_script(self):
        script = self.env["crm.deal.script"].browse(self.script.id)
        self.assertEqual(script.name, "Test process")
        self.assertEqual(script.team_ids, self.sales_team_1)
        with self.assertRaises(AccessError):
            self.env["crm.deal.script"].create({"name": "My own process"})
        with self.assertRaises(AccessError):
            script.write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            script.unlink()

    def test_multi_company_isolation(self):
        other_company = self.env["res.company"].create({"name": "Other Co"})
        foreign = self.env["crm.deal.script"].create(
            {"name": "Foreign process", "company_id": other_company.id}
        )
        visible = (
            self.env["crm.deal.script"]
            .with_user(self.user_sales_manager)
            .search([("name", "=", "Foreign process")])
        )
        self.assertNotIn(foreign, visible)
