"""InMail credit-policy simulator.

Public API (stable): build a :class:`Market` and a :class:`Policy` (or take a preset), run one
replication with :func:`run_replication`, read ``result.metrics`` / ``result.daily_frame()``;
or load a scenario file with :func:`load_scenario` / run it with :func:`run_scenario` and read
the :class:`Results` DataFrames (summary, comparison, replications, timeseries, breakdowns).
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
from simulator.experiment import Results, run_experiment, run_scenario
from simulator.metrics import METRIC_NAMES, ReplicationResult
from simulator.presets import PRESETS, preset
from simulator.scenario import ScenarioError, load_scenario

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
    "Results",
    "RunConfig",
    "ScenarioError",
    "Segment",
    "SendingModel",
    "Threshold",
    "__version__",
    "load_scenario",
    "preset",
    "run_experiment",
    "run_replication",
    "run_scenario",
]
