import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

registry.category("web_tour.tours").add("deal_stages_control_board", {
    url: "/odoo",
    steps: () => [
        ...stepUtils.goToAppSteps("crm.crm_menu_root", "Open CRM"),
        {
            trigger: '[data-menu-xmlid="deal_stages.crm_lead_menu_deal_control"]',
            content: "Open the deal control board",
            run: "click",
        },
        {
            // default filter: deals at risk; the late deal is there, the quiet one is not
            trigger:
                ".o_deal_control_kanban .o_kanban_group:contains('Tour Step One') .o_kanban_record:contains('Tour Late Deal'):contains('1 overdue')",
            content: "The deal at risk shows in its step with its overdue activity",
        },
        {
            // a translatable word: a one-letter unit ("d") stays English in Russian
            trigger:
                ".o_deal_control_kanban .o_kanban_record:contains('Tour Late Deal') [name=deal_days_in_step]:contains('0 days')",
            content: "The card shows the days in step",
        },
        {
            trigger: ".o_deal_control_kanban:not(:has(.o_kanban_record:contains('Tour Quiet Deal')))",
            content: "Deals not at risk are filtered out",
        },
        {
            trigger: ".o_searchview_facet:contains('Deals at Risk') .o_facet_remove",
            content: "Show all deals",
            run: "click",
        },
        {
            trigger: ".o_deal_control_kanban .o_kanban_record:contains('Tour Quiet Deal')",
            content: "All deals of the script are on the board",
        },
        {
            trigger: 'button[data-menu-xmlid="crm.crm_menu_report"]',
            content: "Open the reporting menu",
            run: "click",
        },
        {
            trigger: 'a[data-menu-xmlid="deal_stages.crm_deal_step_stay_report_menu"]',
            content: "Open the time in step analysis",
            run: "click",
        },
        {
            trigger: ".o_pivot th:contains('Median Time (h)')",
            content: "The pivot shows the median",
        },
        {
            trigger: ".o_pivot th:contains('90th Percentile Time (h)')",
            content: "and the 90th percentile",
        },
        {
            trigger: ".o_pivot .o_pivot_header_cell_closed:contains('Tour Step One')",
            content: "Rows are the script steps",
        },
    ],
});

// A salesperson without deals at risk gets the action's help, not a blank page
// (the board is grouped by step, and no deal means no column).
registry.category("web_tour.tours").add("deal_stages_my_deals_at_risk_empty", {
    steps: () => [
        {
            trigger: ".o_view_nocontent:contains('None of your deals is at risk')",
            content: "The empty board explains itself",
        },
    ],
});

// The board reflects what other users do, without a reload: another user
// (here through the JSON-2 API, with their own API key and no session of this
// browser) moves a deal, the bus tells the board, the card changes column.
registry.category("web_tour.tours").add("deal_stages_control_board_live", {
    steps: () => [
        {
            trigger: ".o_searchview_facet:contains('Deals at Risk') .o_facet_remove",
            content: "Show all deals",
            run: "click",
        },
        {
            trigger:
                ".o_deal_control_kanban .o_kanban_group:contains('Tour Step One') .o_kanban_record:contains('Tour Moving Deal')",
            content: "The deal stands in the first step",
        },
        {
            trigger: ".o_deal_control_kanban .o_kanban_record:contains('Tour Still Deal')",
            content: "Another user moves the deal to the second step",
            async run() {
                const { apiKey, dealId, stageId } = window.dealStagesBoardTour;
                const response = await fetch("/json/2/crm.lead/write", {
                    method: "POST",
                    credentials: "omit",
                    headers: {
                        "Content-Type": "application/json",
                        Authorization: `bearer ${apiKey}`,
                    },
                    body: JSON.stringify({ ids: [dealId], vals: { stage_id: stageId } }),
                });
                if (!response.ok) {
                    throw new Error(`the other user's move failed: ${await response.text()}`);
                }
            },
        },
        {
            trigger:
                ".o_deal_control_kanban .o_kanban_group:contains('Tour Step Two') .o_kanban_record:contains('Tour Moving Deal')",
            content: "The board reloaded by itself: the deal is in the second step",
        },
        {
            trigger:
                ".o_deal_control_kanban .o_kanban_group:contains('Tour Step One'):not(:has(.o_kanban_record:contains('Tour Moving Deal')))",
            content: "and no longer in the first one",
        },
    ],
});
