from odoo.fields import Domain

# the fields this add-on gives the deals; conditions using them go with it
OWN_FIELDS = (
    "deal_invoiced_amount",
    "deal_paid_amount",
    "deal_paid_ratio",
    "deal_invoice_posted",
    "deal_invoiced_in_full",
    "deal_paid_in_full",
)
# the B2B template's steps this add-on completes, with the checklist item the
# invoices and payments now prove (optional from now on, see the data file)
TEMPLATE_STEPS = {
    "deal_stages.deal_script_template_b2b_step_invoicing": None,
    "deal_stages.deal_script_template_b2b_step_prepayment": (
        "deal_stages.deal_script_template_b2b_check_prepayment_received"
    ),
    "deal_stages.deal_script_template_b2b_step_closing": (
        "deal_stages.deal_script_template_b2b_check_paid_in_full"
    ),
}


def _template_steps(env):
    """{template step: its proven checklist item (or an empty recordset)}"""
    result = {}
    for step_xmlid, check_xmlid in TEMPLATE_STEPS.items():
        step = env.ref(step_xmlid, raise_if_not_found=False)
        if step:
            check = check_xmlid and env.ref(check_xmlid, raise_if_not_found=False)
            result[step] = check or env["crm.deal.script.check"]
    return result


def _copied_checks(steps, check):
    """The items of ``steps`` copied from the template's ``check``."""
    return steps.check_ids.filtered(lambda item: item.name == check.name)


def post_init_hook(env):
    """Give the steps created from the template (before this add-on) its
    conditions, unless they have their own, and make the proven item optional."""
    for template_step, check in _template_steps(env).items():
        steps = env["crm.deal.script.step"].search(
            [
                ("template_step_id", "=", template_step.id),
                ("auto_advance_domain", "in", [False, ""]),
            ]
        )
        if not steps:
            continue
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
        if check:
            _copied_checks(steps, check).required = False


def uninstall_hook(env):
    """Remove the conditions that use this add-on's fields (they would be
    invalid) and make the items they proved required again."""
    Step = env["crm.deal.script.step"].with_context(active_test=False)
    Step.search(
        Domain.OR(Domain("auto_advance_domain", "ilike", name) for name in OWN_FIELDS)
    ).write({"auto_advance_domain": False})
    for template_step, check in _template_steps(env).items():
        if check:
            steps = Step.search([("template_step_id", "=", template_step.id)])
            (check | _copied_checks(steps, check)).required = True
