import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("deal_stages_handoff", {
    steps: () => [
        {
            trigger: ".o_field_widget[name=deal_handoff_state]:contains('Hand-off failed')",
            content: "The deal shows that its hand-off failed",
        },
        {
            trigger: ".o_notebook a.nav-link:contains('Process')",
            content: "Open the process tab",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=deal_handoff_ids] .o_data_row:contains('1C Tour'):contains('401')",
            content: "The hand-off is listed with the receiver's answer",
        },
        {
            trigger: ".o_field_widget[name=deal_handoff_ids] .o_data_row button[name=action_retry]",
            content: "Send it again with the same key",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=deal_handoff_ids] .o_data_row:contains('Pending')",
            content: "It waits for the delivery again",
        },
        {
            trigger: ".o_field_widget[name=deal_handoff_state]:contains('Hand-off pending')",
            content: "The badge follows",
        },
    ],
});
