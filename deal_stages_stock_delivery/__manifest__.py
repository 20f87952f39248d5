# Copyright 2026 deal_stages authors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Deal Stages - Shipping Carrier",
    "summary": "The carrier and tracking reference of a deal's delivery go to the deal",
    "version": "19.0.1.0.0",
    "category": "Sales/CRM",
    "license": "LGPL-3",
    "author": "deal_stages authors",
    "website": "https://github.com/deal-stages/deal_stages",
    "depends": ["deal_stages_stock", "stock_delivery"],
    "installable": True,
    "auto_install": True,
}
