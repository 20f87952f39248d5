import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("deal_stages_gate_form", {
    steps: () => [
        {
            trigger: ".o_deal_process_bar .o_deal_step_current:contains('Tour Contract')",
            content: "The process bar shows the current step",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_missing:contains('Signed contract attached')",
            content: "What is missing is listed in plain words",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_next:contains('Tour Invoicing'):contains('Send the invoice')",
            content: "What entering the next step does is previewed",
        },
        {
            trigger: ".o_statusbar_status button:contains('Tour Payment')",
            content: "Try to skip a step",
            run: "click",
        },
        {
            trigger: ".o_deal_gate_dialog .o_deal_gate_issue:contains('Steps cannot be skipped')",
            content: "The refusal explains the order",
        },
        {
            trigger: ".o_deal_gate_dialog .modal-footer button:contains('Close')",
            run: "click",
        },
        {
            trigger: ".o_form_button_cancel",
            content: "Discard the refused move",
            run: "click",
        },
        {
            trigger: ".o_deal_process_bar input.o_deal_check_box",
            content: "Tick the checklist in place",
            run: "click",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_ready",
            content: "The deal is ready to move",
        },
        {
            trigger: ".o_statusbar_status button:contains('Tour Invoicing')",
            content: "Move to the next step",
            run: "click",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_step_current:contains('Tour Invoicing')",
            content: "The deal is in the next step",
        },
        {
            trigger: ".o_deal_process_bar .o_deal_step_done:contains('Tour Contract')",
        },
        {
            trigger:
                ".o_deal_process_bar .o_deal_next:contains('Customer message “Tour payment due” (Propose to the salesperson)')",
            content: "The next step's customer message is named in one sentence",
        },
    ],
});
