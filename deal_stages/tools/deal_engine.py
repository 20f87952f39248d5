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


class DealMigration:
    """A migration of deals to a new version of their process, passed in the
    context as ``deal_migration`` (a Python object: not forgeable over RPC).

    The engine's entry work on the migrated deals reads it: each deadline
    counts from ``starts`` (the entry in the old step), and each deal gets
    one note, titled ``titles`` (the migration), listing what was done.
    """

    __slots__ = ("starts", "titles")

    def __init__(self, starts, titles):
        self.starts = starts  # {lead id: datetime}
        self.titles = titles  # {lead id: text}


class DealMarker:
    """A flag of the engine passed in the context. A Python object: a context
    sent over RPC is JSON and cannot carry one, so nobody sets it by a key."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<DealMarker {self.name}>"


# the writes the engine makes while a write of deals runs (their auto-advance
# is left to that write)
DEAL_NESTED_WRITE = DealMarker("nested_write")
# documents changed together (payments registered in one go): their deals'
# auto-advance runs once at the end of the batch
DEAL_AUTO_ADVANCE_DEFERRED = DealMarker("auto_advance_deferred")
