"""InMail credit-policy simulator.

Public API (stable): build a :class:`Market` and a :class:`Policy` (or take a preset), run one
replication with :func:`run_replication`, read ``result.metrics`` / ``result.daily_frame()``;
or load a scenario file with :func:`load_scenario` / run it with :func:`run_scenario` and read
the :class:`Results` DataFrames (summary, comparison, replications, timeseries, breakdowns).
"""

from importlib import import_module
from typing import Any

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

_LAZY = {
    "BaselineMismatchError": "simulator.baseline",
    "assert_matches_baseline": "simulator.baseline",
    "Results": "simulator.experiment",
    "run_experiment": "simulator.experiment",
    "run_scenario": "simulator.experiment",
    "ScenarioError": "simulator.scenario",
    "load_scenario": "simulator.scenario",
}
"""The experiment edge (pandas, pydantic, scipy.stats) loads on first use, so that the core -
and every worker process that only runs replications - imports quickly."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "METRIC_NAMES",
    "PRESETS",
    "SEAT_TYPES",
    "Accrual",
    "Adaptation",
    "BaselineMismatchError",
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
    "Results",
    "RunConfig",
    "ScenarioError",
    "Segment",
    "SendingModel",
    "Threshold",
    "__version__",
    "assert_matches_baseline",
    "load_scenario",
    "preset",
    "run_experiment",
    "run_replication",
    "run_scenario",
]
