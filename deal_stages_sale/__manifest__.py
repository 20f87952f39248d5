# Copyright 2026 deal_stages authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Deal Stages - Sales",
    "summary": "Quotations move the deal: confirmed quotation ends Contract signing",
    "version": "19.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "deal_stages authors",
    "website": "https://github.com/deal-stages/deal_stages",
    "depends": ["crm", "deal_stages", "sale_crm"],
    "data": [
        "data/crm_deal_script_template_data.xml",
        "views/crm_lead_views.xml",
        "views/crm_deal_handoff_endpoint_views.xml",
    ],
    "post_init_hook": "post_init_hook",
    "uninstall_hook": "uninstall_hook",
    "auto_install": True,
    "installable": True,
    "application": False,
}
