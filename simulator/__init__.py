"""InMail credit-policy simulator.

Public API (stable): build a :class:`Market` and a :class:`Policy` (or take a preset), run one
replication with :func:`run_replication`, read ``result.metrics`` / ``result.daily_frame()``.
"""

from simulator.config import (
    SEAT_TYPES,
    Accrual,
    Adaptation,
    Dist,
    Fatigue,
    Grant,
    Market,
    MemberPopulation,
    Phase,
    Policy,
    RecruiterGroup,
    RefundRule,
    ResponseModel,
    RunConfig,
    Segment,
    SendingModel,
    Threshold,
)
from simulator.engine import run_replication
from simulator.metrics import METRIC_NAMES, ReplicationResult
from simulator.presets import PRESETS, preset

__version__ = "0.1.0"

__all__ = [
    "METRIC_NAMES",
    "PRESETS",
    "SEAT_TYPES",
    "Accrual",
    "Adaptation",
    "Dist",
    "Fatigue",
    "Grant",
    "Market",
    "MemberPopulation",
    "Phase",
    "Policy",
    "RecruiterGroup",
    "RefundRule",
    "ReplicationResult",
    "ResponseModel",
    "RunConfig",
    "Segment",
    "SendingModel",
    "Threshold",
    "__version__",
    "preset",
    "run_replication",
]
