from odoo import api, models, tools

from ..tools import DealEngineCollector

# the code of the shipped rules' actions (data/base_automation_data.xml)
DEAL_ENGINE_CODE = "records._deal_run_entry_automation()"


class BaseAutomation(models.Model):
    _name = "base.automation"
    # _get_action_ids and _deal_engine_rules cache the rules: cleared when
    # rules are created, removed, (de)activated or change trigger or actions
    _inherit = ["base.automation", "crm.deal.config.mixin"]
    _deal_config_fields = frozenset(
        {"model_id", "active", "trigger", "on_change_field_ids"}
        | {"trigger_field_ids", "action_server_ids"}
    )

    @api.model
    def _get_actions(self, records, triggers):
        """Same rules as Odoo finds, without a query on every write.

        Once rules exist on a model, Odoo searches them at each write and each
        recompute of a stored field of that model. Shipping rules on
        ``crm.lead`` would add that cost to every lead, scripted or not; the
        search result only changes when rules change, so it is cached.
        """
        if "__action_done" not in self.env.context:
            self = self.with_context(__action_done={})
        return self.browse(self._get_action_ids(records._name, tuple(triggers)))

    @tools.ormcache("model_name", "triggers")
    def _get_action_ids(self, model_name, triggers):
        domain = [("model_name", "=", model_name), ("trigger", "in", list(triggers))]
        return tuple(self.with_context(active_test=True).sudo().search(domain).ids)

    @api.model
    @tools.ormcache()
    def _deal_engine_rules(self):
        """{rule id: trigger field names} of the active rules on deals whose
        only action is the deal engine's (the shipped ones, unless an admin
        added an action). Cleared when rules or their actions change."""
        rules = self.sudo().search([("model_name", "=", "crm.lead")])
        return {
            rule.id: tuple(rule.trigger_field_ids.mapped("name"))
            for rule in rules
            if rule.action_server_ids
            and all(
                action.state == "code" and (action.code or "").strip() == DEAL_ENGINE_CODE
                for action in rule.action_server_ids
            )
        }

    def _process(self, records, domain_post=None):
        """Run the deal engine once per batch rather than once per record.

        Odoo runs an automation's server actions record by record. Under this
        context the engine's entry points only collect the records; the engine
        then runs once on the whole batch (one create per model for 1,000 deals).
        A rule whose only action is the engine hands its records over directly.
        """
        if records._name != "crm.lead" or not records:
            return super()._process(records, domain_post=domain_post)
        # an outer collector (a deal being written) runs the engine later
        outer = self.env.context.get("deal_engine_collector")
        if not isinstance(outer, DealEngineCollector):
            outer = None  # a value sent in the context is no collector
        collector = outer or DealEngineCollector()
        trigger_names = self._deal_engine_rules().get(self.id)
        if trigger_names is not None:
            self._deal_collect(records, trigger_names, collector)
        elif outer:
            return super()._process(records, domain_post=domain_post)
        else:
            super(BaseAutomation, self.with_context(deal_engine_collector=collector))._process(
                records.with_context(deal_engine_collector=collector), domain_post=domain_post
            )
        if not outer:
            collector.run(records)

    def _filter_post_export_domain(self, records, feedback=False):
        # Odoo checks every rule on deals after each write and each recompute of
        # a stored field; an engine rule whose trigger fields were not written
        # keeps no record anyway: skip evaluating its condition
        old_values = self.env.context.get("old_values")
        if records and records._name == "crm.lead" and old_values is not None:
            trigger_names = self._deal_engine_rules().get(self.id)
            if trigger_names and not any(
                name in values for values in old_values.values() for name in trigger_names
            ):
                return records.browse(), None
        return super()._filter_post_export_domain(records, feedback=feedback)

    def _deal_collect(self, records, trigger_names, collector):
        """Odoo's ``_process`` for an engine-only rule, without running its code.

        Same bookkeeping (records done once per rule, only those whose trigger
        fields changed, last run date), then the records join the engine's
        batch at once: the action's code would only collect them, record by
        record, after reading the action and its groups.
        """
        automation_done = self.env.context.get("__action_done", {})
        records_done = automation_done.get(self, records.browse())
        records -= records_done
        if not records:
            return
        if not self.env.context.get("__action_feedback"):
            # a new mark for what follows (Odoo's own writes included)
            automation_done = dict(automation_done)
            self = self.with_context(__action_done=automation_done)
            records = records.with_context(__action_done=automation_done)
        automation_done[self] = records_done + records
        old_values = self.env.context.get("old_values")
        if trigger_names and old_values is not None:
            records = records.filtered(
                lambda record: any(
                    name in old_values.get(record.id, {})
                    and record[name] != old_values[record.id][name]
                    for name in trigger_names
                )
            )
            automation_done[self] = records_done + records
        if records and "date_automation_last" in records._fields:
            # Odoo's mark of the rule's last run, written as a column of the
            # move's own update: through every override of the deals' write
            # (tracking, the engine, the rules evaluated again) it costs the
            # move a second write of the deals
            models.BaseModel.write(records, {"date_automation_last": self.env.cr.now()})
        collector.add("_deal_run_entry_automation", records.ids)


class IrActionsServer(models.Model):
    _name = "ir.actions.server"
    # the actions of automation rules decide which rules only run the deal
    # engine (base.automation._deal_engine_rules, cached)
    _inherit = ["ir.actions.server", "crm.deal.config.mixin"]

    def _deal_is_config(self):
        return bool(self.filtered("base_automation_id"))
