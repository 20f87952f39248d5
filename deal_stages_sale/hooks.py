# the fields this add-on gives the deals; conditions using them go with it
OWN_FIELDS = ("deal_quotation_sent", "deal_quotation_confirmed")
# the B2B template's step this add-on completes (the signed contract stays a
# checklist item: a confirmed quotation does not prove it)
PROVEN_CHECKS = {"deal_stages.deal_script_template_b2b_step_contract": None}


def post_init_hook(env):
    """Give the existing scripts' "Contract signing" step the template's condition.

    Only steps created from the template (linked to it) that have no
    condition of their own; others are left to the administrator.
    """
    env["crm.deal.script.step"]._deal_bridge_install(PROVEN_CHECKS)


def uninstall_hook(env):
    """Remove the conditions that use this add-on's fields (they would be invalid)."""
    env["crm.deal.script.step"]._deal_bridge_uninstall(OWN_FIELDS, PROVEN_CHECKS)
