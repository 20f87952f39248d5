import { registry } from "@web/core/registry";

// A deal at Shipment: lost (the step requires a reason), restored, then an
// order change sends it back to Invoicing.
registry.category("web_tour.tours").add("deal_stages_exceptions", {
    steps: () => [
        {
            trigger: ".o_form_view .o_statusbar_buttons button:contains('Lost')",
            content: "The customer refuses: mark the deal lost",
            run: "click",
        },
        {
            trigger: ".modal button[name=action_lost_reason_apply]",
            content: "Try without a reason",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=lost_reason_id].o_field_invalid",
            content: "The step requires a lost reason",
        },
        {
            trigger: ".modal .o_field_widget[name=lost_reason_id] .o_selection_badge:contains('Tour reason')",
            content: "Choose the reason",
            run: "click",
        },
        {
            trigger: ".modal button[name=action_lost_reason_apply]",
            content: "Mark as lost",
            run: "click",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_closed:contains('This deal is lost')",
            content: "The guide offers no next move on a lost deal",
        },
        {
            trigger: ".o_deal_process_bar:not(:has(.o_deal_next)) input.o_deal_check_box:disabled",
            content: "nor the ticks of its checklist",
        },
        {
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_restore]",
            content: "The customer comes back: restore the deal",
            run: "click",
        },
        {
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_deal_order_change]",
            content: "The customer orders more: record an order change",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=amount_delta] input",
            content: "The amount increases",
            run: "edit 500",
        },
        {
            trigger: ".modal .o_field_widget[name=description] textarea",
            content: "Describe the change",
            run: "edit Ten more chairs",
        },
        {
            trigger: ".modal button[name=action_confirm]",
            content: "Confirm the change",
            run: "click",
        },
        {
            trigger: ".o_form_view button[name=action_view_deal_changes]",
            content: "The deal lists its change",
        },
    ],
});
