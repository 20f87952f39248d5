"""19.0.1.2.0: the deal's owner on its stage history and per-step totals.

The stays and totals get the deal's current salesperson and sales team
(``lead_user_id``, ``lead_team_id``, kept in sync by the engine from now on),
filled here in SQL from the deals. The record rules of the history and of the
time-in-step analysis per stay read these columns instead of joining the
deals: the shipped rules (``noupdate``) get their new domain, unless an
administrator changed them.
"""

from odoo import SUPERUSER_ID, api

# {rule xmlid: (domain shipped by 19.0.1.1.0, new domain)}
RULES = {
    "deal_stages.crm_deal_stage_log_personal_rule": (
        "['|', ('lead_id.user_id', '=', user.id), ('lead_id.user_id', '=', False)]",
        "['|', ('lead_user_id', '=', user.id), ('lead_user_id', '=', False)]",
    ),
    "deal_stages.crm_deal_stage_log_rule_deal_supervisor": (
        "[('lead_id.team_id.user_id', '=', user.id)]",
        "[('lead_team_leader_id', '=', user.id)]",
    ),
    "deal_stages.crm_deal_step_stay_report_rule_personal": (
        "['|', ('lead_id.user_id', '=', user.id), ('lead_id.user_id', '=', False)]",
        "['|', ('lead_user_id', '=', user.id), ('lead_user_id', '=', False)]",
    ),
    "deal_stages.crm_deal_step_stay_report_rule_deal_supervisor": (
        "[('lead_id.team_id.user_id', '=', user.id)]",
        "[('lead_team_leader_id', '=', user.id)]",
    ),
    "deal_stages.crm_deal_step_time_report_rule_deal_supervisor": (
        "[('team_id.user_id', '=', user.id)]",
        "[('team_leader_id', '=', user.id)]",
    ),
}


def migrate(cr, version):
    if not version:
        return
    for table in ("crm_deal_stage_log", "crm_deal_step_total"):
        cr.execute(
            f"""
            UPDATE {table} target
               SET lead_user_id = deal.user_id, lead_team_id = deal.team_id
              FROM crm_lead deal
             WHERE deal.id = target.lead_id
               AND (target.lead_user_id, target.lead_team_id)
                   IS DISTINCT FROM (deal.user_id, deal.team_id)
            """  # constant table names
        )
    env = api.Environment(cr, SUPERUSER_ID, {})
    for xmlid, (old, new) in RULES.items():
        rule = env.ref(xmlid, raise_if_not_found=False)
        if rule and "".join(rule.domain_force.split()) == "".join(old.split()):
            rule.domain_force = new
