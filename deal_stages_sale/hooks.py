from odoo.fields import Domain

# the fields this add-on gives the deals; conditions using them go with it
OWN_FIELDS = ("deal_quotation_sent", "deal_quotation_confirmed")


def post_init_hook(env):
    """Give the existing scripts' "Contract signing" step the template's condition.

    Only steps created from the template (linked to it) that have no
    condition of their own; others are left to the administrator.
    """
    template_step = env.ref(
        "deal_stages.deal_script_template_b2b_step_contract", raise_if_not_found=False
    )
    if not template_step:
        return
    steps = env["crm.deal.script.step"].search(
        [("template_step_id", "=", template_step.id), ("auto_advance_domain", "in", [False, ""])]
    )
    if not steps:
        return
    steps.write(
        {
            "auto_advance_domain": template_step.auto_advance_domain,
            "auto_advance_label": template_step.auto_advance_label,
        }
    )
    # the label in every language the template has it in
    translations = {
        tr["lang"]: tr["value"]
        for tr in template_step.get_field_translations("auto_advance_label")[0]
        if tr["value"]
    }
    for step in steps:
        step.update_field_translations("auto_advance_label", translations)


def uninstall_hook(env):
    """Remove the conditions that use this add-on's fields (they would be invalid)."""
    domain = Domain.OR(
        Domain("auto_advance_domain", "ilike", field_name) for field_name in OWN_FIELDS
    )
    env["crm.deal.script.step"].with_context(active_test=False).search(domain).write(
        {"auto_advance_domain": False}
    )
