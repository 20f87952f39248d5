# the fields this add-on gives the deals; conditions using them go with it
OWN_FIELDS = ("deal_delivered",)
# the B2B template's steps this add-on completes, with the checklist item the
# deliveries now prove (optional from now on, see the data file)
PROVEN_CHECKS = {
    "deal_stages.deal_script_template_b2b_step_shipment": (
        "deal_stages.deal_script_template_b2b_check_delivered"
    ),
}


def post_init_hook(env):
    """Give the steps created from the template before this add-on its conditions."""
    env["crm.deal.script.step"]._deal_bridge_install(PROVEN_CHECKS)


def uninstall_hook(env):
    """Remove the conditions that use this add-on's fields."""
    env["crm.deal.script.step"]._deal_bridge_uninstall(OWN_FIELDS, PROVEN_CHECKS)
