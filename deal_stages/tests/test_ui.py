from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "deal_stages")
class TestDealStagesUi(HttpCase):
    def test_manager_creates_script_tour(self):
        manager = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Tour Team"})
        self.start_tour("/odoo", "deal_stages_script_create", login=manager.login)
        script = self.env["crm.deal.script"].search([("name", "=", "Tour B2B process")])
        self.assertTrue(script, "the tour should have saved the new script")
        self.assertEqual(script.team_ids, team)
