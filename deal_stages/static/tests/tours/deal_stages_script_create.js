import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_utils";

registry.category("web_tour.tours").add("deal_stages_script_create", {
    url: "/odoo",
    steps: () => [
        ...stepUtils.goToAppSteps("crm.crm_menu_root", "Open CRM"),
        {
            trigger: 'button[data-menu-xmlid="crm.crm_menu_config"]',
            content: "Open the configuration menu",
            run: "click",
        },
        {
            trigger: 'a[data-menu-xmlid="deal_stages.crm_deal_script_menu"]',
            content: "Open deal scripts",
            run: "click",
        },
        {
            trigger: ".o_list_button_add",
            content: "Create a script",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name=name] input",
            content: "Name the script",
            run: "edit Tour B2B process",
        },
        {
            trigger: ".o_field_widget[name=team_ids] input",
            content: "Bind it to a team",
            run: "edit Tour Team",
        },
        {
            trigger: ".o-autocomplete--dropdown-item:contains('Tour Team')",
            run: "click",
        },
        ...stepUtils.saveForm(),
    ],
});
