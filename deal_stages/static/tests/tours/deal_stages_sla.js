import { registry } from "@web/core/registry";

// the pipeline shows each deal's step deadline; filters find the late ones
registry.category("web_tour.tours").add("deal_stages_sla", {
    url: "/odoo/action-crm.crm_lead_action_pipeline",
    steps: () => [
        {
            trigger:
                ".o_kanban_record:contains('Stalled tour deal') .o_deal_sla_marker.text-bg-danger:contains('Overdue')",
            content: "A breached deal shows how late it is",
        },
        {
            trigger:
                ".o_kanban_record:contains('Risky tour deal') .o_deal_sla_marker.text-bg-warning:contains('left')",
            content: "A deal at risk shows the time left",
        },
        {
            trigger: ".o_kanban_record:contains('Calm tour deal'):not(:has(.o_deal_sla_marker))",
            content: "A deal without deadline has no marker",
        },
        {
            trigger: ".o_control_panel .o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            trigger: ".o_filter_menu .o_menu_item:contains('SLA Breached')",
            content: "Filter the breached deals",
            run: "click",
        },
        {
            trigger:
                ".o_kanban_renderer:has(.o_kanban_record:contains('Stalled tour deal')):not(:has(.o_kanban_record:contains('Risky tour deal')))",
        },
        {
            trigger: ".o_filter_menu .o_menu_item:contains('SLA Breached')",
            run: "click",
        },
        {
            trigger: ".o_filter_menu .o_menu_item:contains('At Risk')",
            content: "Filter the deals at risk",
            run: "click",
        },
        {
            trigger:
                ".o_kanban_renderer:has(.o_kanban_record:contains('Risky tour deal')):not(:has(.o_kanban_record:contains('Stalled tour deal')))",
        },
        {
            trigger: ".o_group_by_menu .o_menu_item:contains('SLA Status')",
            content: "Group by deadline status",
            run: "click",
        },
        {
            trigger: ".o_kanban_group .o_column_title:contains('At risk')",
        },
    ],
});
