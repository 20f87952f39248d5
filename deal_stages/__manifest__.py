# Copyright 2026 deal_stages authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Deal Stages",
    "summary": "Run every CRM deal through a configurable, enforced sales process",
    "version": "19.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "deal_stages authors",
    "website": "https://github.com/deal-stages/deal_stages",
    "depends": ["crm", "base_automation", "portal", "rating"],
    "data": [
        "security/deal_stages_security.xml",
        "security/ir.model.access.csv",
        "security/deal_control_security.xml",
        "data/base_automation_data.xml",
        "data/mail_template_data.xml",
        "data/crm_deal_script_template_data.xml",
        "data/crm_deal_script_template_communication_data.xml",
        "views/crm_deal_script_views.xml",
        "views/crm_deal_stage_log_views.xml",
        "views/crm_lead_views.xml",
        "views/crm_team_views.xml",
        "views/crm_deal_step_stay_report_views.xml",
        "views/crm_deal_step_time_report_views.xml",
        "views/crm_deal_step_funnel_report_views.xml",
        "views/crm_deal_loss_report_views.xml",
        "views/crm_deal_rework_report_views.xml",
        "views/crm_deal_activity_report_views.xml",
        "views/crm_lead_control_views.xml",
        "views/deal_stages_menus.xml",
        "views/crm_lead_communication_views.xml",
        "views/deal_portal_templates.xml",
    ],
    "demo": [
        "demo/deal_stages_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "deal_stages/static/src/views/**/*",
        ],
        "web.assets_tests": [
            "deal_stages/static/tests/tours/**/*",
        ],
    },
    "installable": True,
    "application": False,
}
