"""Plain objects the deal engine passes around: how deals move, what to run once."""


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
        if not any(self.pending.values()):
            return
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
