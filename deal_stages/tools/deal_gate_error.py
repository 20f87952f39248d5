"""The refusal of a stage change by the gate."""

from odoo.exceptions import UserError


class DealGateError(UserError):
    """A stage change refused by the gate of one or more deals.

    The message lists every missing item in plain words (RPC, import and
    tests read it); ``context["deal_gate"]`` carries the same per deal, for
    the web client's dialog that helps complete them.
    """

    def __init__(self, message, payload):
        super().__init__(message)
        # serialized by odoo.http.serialize_exception; the web client picks
        # its dialog from "exception_class"
        self.context = {"exception_class": "deal_stages.DealGateError", "deal_gate": payload}
