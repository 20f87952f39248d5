import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("deal_stages_version", {
    steps: () => [
        {
            trigger: ".o_notebook a.nav-link:contains('Process Map')",
            content: "Open the process map",
            run: "click",
        },
        {
            trigger: ".o_deal_process_map_step[data-step-key='tour_contract']:contains('Tour Contract')",
            content: "The map draws the steps in order",
        },
        {
            trigger: ".o_deal_process_map_step[data-step-key='tour_invoicing'] .o_deal_process_map_gate",
            content: "with their gates",
        },
        {
            trigger: ".o_deal_process_map_return",
            content: "and the return paths",
        },
        {
            trigger: "button[name=action_new_version_open]",
            content: "Start a new version",
            run: "click",
        },
        {
            trigger: ".o_form_view .alert-info:contains('drives no deal')",
            content: "The new version is a draft",
        },
        {
            trigger: ".o_notebook a.nav-link:contains('Steps')",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=step_ids] .o_data_row td:contains('Tour Contract')",
            content: "Open the first step",
            run: "click",
        },
        {
            trigger: ".modal .o_notebook a.nav-link:contains('Requirements')",
            run: "click",
        },
        {
            trigger: ".modal .o_field_widget[name=require_activities_done] input",
            content: "Change its gate: its activities must be done",
            run: "click",
        },
        {
            trigger: ".modal .o_form_button_save",
            run: "click",
        },
        {
            trigger: "body:not(:has(.modal))",
        },
        {
            trigger: ".o_form_button_save",
            content: "Save the draft",
            run: "click",
        },
        {
            trigger: "button[name=action_open_publish_wizard]",
            content: "Publish it",
            run: "click",
        },
        {
            trigger:
                ".modal .modal-xl .o_deal_publish_maps .o_deal_process_map_step:contains('Tour Contract')",
            content: "Draft and published side by side, in a dialog wide enough for both",
        },
        {
            trigger: ".modal .o_field_widget[name=line_ids] .o_data_row:contains('Tour Contract'):contains('1')",
            content: "The dry run shows where the deal goes",
        },
        {
            trigger: ".modal .o_field_widget[name=in_flight] input[data-value=migrate]",
            content: "Migrate the deals in progress",
            run: "click",
        },
        {
            trigger: ".modal button[name=action_publish]",
            run: "click",
        },
        {
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Published')",
            content: "The new version is published",
        },
    ],
});
