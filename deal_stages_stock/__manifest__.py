# Copyright 2026 deal_stages authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Deal Stages - Delivery",
    "summary": "The delivery of a deal's orders moves the deal on by itself",
    "version": "19.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "deal_stages authors",
    "website": "https://github.com/deal-stages/deal_stages",
    "depends": ["deal_stages_sale", "sale_stock"],
    "data": [
        "views/crm_lead_views.xml",
        "data/crm_deal_script_template_data.xml",
    ],
    "post_init_hook": "post_init_hook",
    "uninstall_hook": "uninstall_hook",
    "installable": True,
    "auto_install": True,
}
