import { registry } from "@web/core/registry";

const DEAL = ".o_kanban_record:contains('Tour gated deal')";
const TARGET = ".o_kanban_group:has(.o_column_title:contains('Tour Invoicing'))";

registry.category("web_tour.tours").add("deal_stages_gate_kanban", {
    steps: () => [
        {
            trigger: `.o_kanban_group:has(.o_column_title:contains('Tour Contract')) ${DEAL} .o_deal_card_position:contains('1/3')`,
            content: "The card shows the deal's step",
        },
        {
            trigger: `${DEAL} .o_deal_card_blocked`,
            content: "The card shows that the next move is blocked",
        },
        {
            trigger: DEAL,
            content: "Drag the deal to the next stage",
            run: `drag_and_drop (.o_opportunity_kanban ${TARGET})`,
        },
        {
            trigger: ".o_deal_gate_dialog .o_deal_gate_issue:contains('Signed contract attached')",
            content: "The move is refused with what is missing",
        },
        {
            trigger: ".o_deal_gate_dialog input.o_deal_gate_check",
            content: "Tick the checklist item in the dialog",
            run: "click",
        },
        {
            trigger: ".o_deal_gate_dialog .o_deal_gate_all_met",
            content: "Everything is met now",
        },
        {
            trigger: ".o_deal_gate_dialog .o_deal_gate_retry",
            content: "Try the move again",
            run: "click",
        },
        {
            trigger: `body:not(:has(.o_deal_gate_dialog)) ${TARGET} ${DEAL} .o_deal_card_position:contains('2/3')`,
            content: "The deal is in the next step",
        },
    ],
});
