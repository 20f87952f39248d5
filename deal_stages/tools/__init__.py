"""Plain Python of the deal engine (no models): imported by the models.

Like ``mail/tools``: objects passed around by the engine, kept apart from the
models so that each model file holds one model.
"""

from .deal_condition import parse_condition
from .deal_config import DealConfig, DealStepConfig
from .deal_engine import (
    DEAL_AUTO_ADVANCE_DEFERRED,
    DEAL_NESTED_WRITE,
    DealEngineCollector,
    DealMarker,
    DealMigration,
    DealMove,
)
from .deal_gate_error import DealGateError
from .deal_input import ensure_one
from .deal_outcome import DealActivities, DealOutcome, SlaOutcome
from .group_order import ranked_group_orderby

__all__ = [
    "DEAL_AUTO_ADVANCE_DEFERRED",
    "DEAL_NESTED_WRITE",
    "DealActivities",
    "DealConfig",
    "DealEngineCollector",
    "DealGateError",
    "DealMarker",
    "DealMigration",
    "DealMove",
    "DealOutcome",
    "DealStepConfig",
    "SlaOutcome",
    "ensure_one",
    "parse_condition",
    "ranked_group_orderby",
]
