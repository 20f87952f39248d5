"""19.0.1.1.0: process versions.

Every existing script becomes version 1, published, of its own process (the
new columns' defaults and the computed process already say so; written here
explicitly so that no row depends on it), and every step gets its key, made
from its name, unique in its script.
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        UPDATE crm_deal_script
           SET version = COALESCE(version, 1),
               state = COALESCE(state, 'published'),
               process_id = COALESCE(process_id, id)
        """
    )
    env = api.Environment(cr, SUPERUSER_ID, {})
    steps = (
        env["crm.deal.script.step"]
        .with_context(active_test=False)
        .search([("step_key", "=", False)])
    )
    steps._deal_fill_step_keys()
