from odoo import api, models, tools


class DealEngineCollector:
    """Records collected for the deal engine while automation rules run.

    Compared by identity on purpose: Odoo reuses environments whose contexts
    are equal, and two empty collectors must never be taken for one another.
    """

    __slots__ = ("pending",)

    def __init__(self):
        self.pending = {}

    def add(self, method_name, ids):
        self.pending.setdefault(method_name, []).extend(ids)

    def run(self, records):
        """Call the collected engine methods once each, on all their records."""
        records = records.with_context(deal_engine_collector=None)
        while self.pending:
            method_name, ids = self.pending.popitem()
            getattr(records.browse(dict.fromkeys(ids)), method_name)()


class DealMove:
    """How the engine or a trusted action moves deals: cause, note, gate.

    Passed in the context as ``deal_move``. It is a Python object on purpose:
    a context sent over RPC is JSON and cannot carry one, so users cannot
    forge a cause in the history nor skip a gate by setting a context key.
    """

    __slots__ = ("cause", "note", "skip_gate")

    def __init__(self, cause, note=False, skip_gate=False):
        self.cause = cause
        self.note = note
        self.skip_gate = skip_gate


class BaseAutomation(models.Model):
    _inherit = "base.automation"

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

    def _update_registry(self):
        # rules were created, removed, (de)activated or changed trigger
        self.env.registry.clear_cache()
        return super()._update_registry()

    def _process(self, records, domain_post=None):
        """Run the deal engine once per batch rather than once per record.

        Odoo runs an automation's server actions record by record. Under this
        context the engine's entry points only collect the records; the engine
        then runs once on the whole batch (one create per model for 1,000 deals).
        """
        if records._name != "crm.lead" or self.env.context.get("deal_engine_collector"):
            # an outer collector (a deal being written) runs the engine later
            return super()._process(records, domain_post=domain_post)
        collector = DealEngineCollector()
        super(BaseAutomation, self.with_context(deal_engine_collector=collector))._process(
            records.with_context(deal_engine_collector=collector), domain_post=domain_post
        )
        collector.run(records)
