import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("deal_stages_portal_progress", {
    steps: () => [
        {
            content: "The customer sees their order's steps",
            trigger: ".o_deal_portal_steps .o_deal_portal_step_name:contains('Contract signing')",
        },
        {
            content: "The current step is highlighted",
            trigger: ".o_deal_portal_step_current .o_deal_portal_step_name:contains('Invoicing')",
        },
        {
            content: "and named in the header",
            trigger: ".o_deal_portal_current_step:contains('Invoicing')",
        },
        {
            content: "Shipment references are shown",
            trigger: ".o_deal_portal_shipment:contains('TRACK-4242')",
        },
        {
            content: "Shared documents can be downloaded",
            trigger: ".o_deal_portal_documents a:contains('signed-contract.pdf')",
        },
    ],
});
