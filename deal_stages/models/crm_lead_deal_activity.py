"""Deal feature: the activities the script's steps create and cancel."""

from odoo import fields, models
from odoo.tools import SQL

from ..tools import DealActivities


class CrmLeadDealActivity(models.AbstractModel):
    _name = "crm.lead.deal.activity"
    _description = "Deal: Script Activities"

    deal_applied_activity_ids = fields.Many2many(
        "crm.deal.script.activity",
        "crm_lead_deal_applied_activity_rel",
        "lead_id",
        "script_activity_id",
        string="Script Activities Created",
        copy=False,
        readonly=True,
        help="Technical: script activity templates already applied to this deal, "
        "so that 'once' templates are never applied twice.",
    )

    def _deal_cancel_left_activities(self, rows=None):
        """Cancel the open activities that steps the deals left created.

        Only the script's own activities of steps that ask for it go; manual
        activities and those of the current step stay.

        :param rows: the rows of ``_deal_script_activity_query`` already read
            (the engine reads them with its claim of the entries, in one
            statement), for deals including ``self``; None reads them
        :return: ``DealActivities`` of the deals (the script's open activities
            that remain, the templates already applied), for
            ``_deal_schedule_activities``: one query serves both
        """
        if rows is None:
            rows = self.env.execute_query(self._deal_script_activity_query())
        lead_ids = set(self.ids)
        rows = [row for row in rows if row[1] in lead_ids]
        config = self.env["crm.deal.script"]._deal_config()
        step_of = {lead.id: lead.deal_step_id.id for lead in self}
        done = DealActivities()
        left = []
        for activity_id, lead_id, template_id, step_id in rows:
            if activity_id is None:
                done.applied.add((lead_id, template_id))
                continue
            step = config.steps.get(step_id)
            if (
                step_id
                and step_id != step_of[lead_id]
                and (
                    step.cancel_activities_on_exit
                    if step
                    else self.env["crm.deal.script.step"].browse(step_id).cancel_activities_on_exit
                )
            ):
                left.append(activity_id)
            else:
                done.open_pairs.add((lead_id, template_id))
        self.env["mail.activity"].browse(left).unlink()
        return done

    def _deal_script_activity_query(self):
        """The deals' open script activities (id, deal, template, step) and
        their templates already applied (NULL, deal, template, NULL)."""
        self.env["mail.activity"].flush_model(
            ["res_model", "res_id", "active", "deal_script_activity_id", "deal_step_id"]
        )
        self.flush_model(["deal_applied_activity_ids"])
        # the deals are the mover's: their activities are read as the gate does
        return SQL(
            """
            SELECT id, res_id, deal_script_activity_id, deal_step_id
              FROM mail_activity
             WHERE res_model = 'crm.lead' AND res_id = ANY(%s) AND active
               AND (deal_script_activity_id IS NOT NULL OR deal_step_id IS NOT NULL)
             UNION ALL
            SELECT NULL, lead_id, script_activity_id, NULL
              FROM crm_lead_deal_applied_activity_rel
             WHERE lead_id = ANY(%s)
            """,
            self.ids,
            self.ids,
        )

    def _deal_script_open_activities(self):
        """The open activities created by the scripts on the deals ``self``."""
        return self.env["mail.activity"].search_fetch(
            [
                ("res_model", "=", "crm.lead"),
                ("res_id", "in", self.ids),
                "|",
                ("deal_script_activity_id", "!=", False),
                ("deal_step_id", "!=", False),
            ],
            ["res_id", "deal_script_activity_id", "deal_step_id"],
        )

    def _deal_schedule_activities(self, step_by_lead, trigger, outcome, open_activities=None):
        """Create the activities the steps' templates of ``trigger`` ask for.

        One ``create`` for all deals. Re-entry policy: ``once`` templates are
        never applied twice to a deal (done, cancelled or open); ``always``
        ones are applied again unless the previous activity is still open.

        :param step_by_lead: {lead id: step} the step whose templates apply
        :param trigger: ``enter``, ``lost``, ``sla`` or ``change``
        :param outcome: a ``DealOutcome`` collecting what was done and skipped
        :param open_activities: the script's open activities of these deals,
            when the caller has them already (saves a search), or the
            ``DealActivities`` of ``_deal_cancel_left_activities``
        """
        steps = self.env["crm.deal.script.step"].concat(*step_by_lead.values())
        # the templates and the fields used below come from the configuration
        # cache: no query
        templates = self.env["crm.deal.script.activity"]._deal_templates(steps, trigger)
        if not templates:
            return self.env["mail.activity"]
        templates_by_step = templates.grouped("step_id")
        leads = self.browse(step_by_lead)
        if isinstance(open_activities, DealActivities):
            applied, open_pairs = open_activities.applied, open_activities.open_pairs
        else:
            applied = leads._deal_applied_template_pairs(templates)
            if open_activities is None:
                open_activities = leads._deal_script_open_activities()
            open_pairs = {(act.res_id, act.deal_script_activity_id.id) for act in open_activities}
        shared = {
            # the assignee's language matters only where there is a choice
            "multi_lang": len(self.env["res.lang"].get_installed()) > 1,
            "today": fields.Date.context_today(self),
            "deadlines": {},
            "model_id": self.env["ir.model"]._get_id("crm.lead"),
        }
        vals_list, new_pairs = [], []
        for lead in leads:
            step_templates = templates_by_step.get(step_by_lead[lead.id], templates.browse())
            for template in step_templates:
                key = (lead.id, template.id)
                if template.reentry == "once" and key in applied:
                    outcome.skipped(
                        lead,
                        self.env._(
                            "“%(activity)s”: created once already.", activity=template.display_name
                        ),
                    )
                    continue
                if key in open_pairs:
                    outcome.skipped(
                        lead,
                        self.env._("“%(activity)s”: still open.", activity=template.display_name),
                    )
                    continue
                vals_list.append(template._deal_activity_values(lead, outcome, shared))
                new_pairs.append(key)
        # no email per activity: each assignee is told once per transaction
        activities = self.env["mail.activity"]._deal_engine_create(vals_list)
        self._deal_mark_templates_applied(new_pairs)
        return activities

    def _deal_applied_template_pairs(self, templates):
        """{(lead id, template id)} of the templates already applied to ``self``."""
        self.flush_model(["deal_applied_activity_ids"])
        rows = self.env.execute_query(
            SQL(
                "SELECT lead_id, script_activity_id FROM crm_lead_deal_applied_activity_rel"
                " WHERE lead_id = ANY(%s) AND script_activity_id = ANY(%s)",
                self.ids,
                templates.ids,
            )
        )
        return set(rows)

    def _deal_mark_templates_applied(self, pairs):
        # one INSERT for the whole batch; the ORM would write deal by deal
        if not pairs:
            return
        lead_ids, template_ids = zip(*pairs, strict=True)
        self.env.cr.execute(
            SQL(
                "INSERT INTO crm_lead_deal_applied_activity_rel (lead_id, script_activity_id)"
                " SELECT * FROM unnest(%s::int[], %s::int[]) ON CONFLICT DO NOTHING",
                list(lead_ids),
                list(template_ids),
            )
        )
        self.browse(lead_ids).invalidate_recordset(["deal_applied_activity_ids"])
