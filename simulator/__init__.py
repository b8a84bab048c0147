"""InMail credit-policy simulator.

Public API (stable): build a :class:`Market` and a :class:`Policy` (or take a preset), run one
replication with :func:`run_replication`, read ``result.metrics`` / ``result.daily_frame()``;
or load a scenario file with :func:`load_scenario` / run it with :func:`run_scenario` and read
the :class:`Results` DataFrames (summary, comparison, replications, timeseries, breakdowns).

Beyond one comparison (the ``inmail-sim`` commands of the same names): :func:`run_sweep` /
:func:`sweep_spec` (a scenario's ``sweep:`` block), :func:`run_sensitivity` /
:func:`sensitivity_spec` (Sobol indices and a tornado, :func:`plot_sobol`, :func:`plot_tornado`),
:func:`calibrate` / :func:`calibration_spec` / :func:`observe` (fit the ``calibration:`` block's
market parameters to published figures) and :func:`run_explain` (Shapley decomposition of a policy
difference, :func:`waterfall`, :func:`waterfall_figure`).  :func:`calibrate` and
:func:`run_explain` take ``workers=K`` or an executor shared by several calls
(``with open_executor(workers) as ex: ...``).  Finished run folders: :func:`list_runs` (the run
index, newest first) and :func:`compare_runs` (runs side by side, paired or Welch differences).
Across plausible worlds: :func:`run_worlds` (the policies in worlds drawn from the ``uncertain:`` block's
priors or a calibration's posterior), :func:`plot_worlds`, :func:`discover` (where does the conclusion
flip?) and :func:`tradeoff_figure`.
"""

from importlib import import_module
from typing import Any

from simulator.core.config import (
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
from simulator.core.engine import run_replication
from simulator.core.metrics import METRIC_NAMES, ReplicationResult
from simulator.core.presets import PRESETS, preset

_LAZY = {
    "BaselineMismatchError": "simulator.experiments.baseline",
    "assert_matches_baseline": "simulator.experiments.baseline",
    "Results": "simulator.api",
    "run_experiment": "simulator.api",
    "run_scenario": "simulator.api",
    "run_worlds": "simulator.api",
    "optimize": "simulator.api",
    "discover": "simulator.api",
    "tradeoff_figure": "simulator.api",
    "plot_worlds": "simulator.io.plotting",
    "compare_runs": "simulator.api",
    "list_runs": "simulator.api",
    "ScenarioError": "simulator.scenario",
    "load_scenario": "simulator.scenario",
    "open_executor": "simulator.experiments.runner",
    "run_sweep": "simulator.experiments.sweep",
    "format_sweep": "simulator.io.sweep_tables",
    "sweep_spec": "simulator.experiments.sweep",
    "run_sensitivity": "simulator.experiments.sensitivity",
    "sensitivity_spec": "simulator.experiments.sensitivity",
    "calibrate": "simulator.experiments.calibration",
    "calibration_spec": "simulator.experiments.calibration",
    "observe": "simulator.experiments.observation",
    "run_explain": "simulator.experiments.explain:explain",
    "plot_sobol": "simulator.io.plotting",
    "plot_tornado": "simulator.io.plotting",
    "waterfall": "simulator.io.plotting",
    "waterfall_figure": "simulator.io.plotting",
}
"""The experiment edge (pandas, pydantic, scipy.stats) loads on first use, so that the core -
and every worker process that only runs replications - imports quickly.  ``module:attribute``
exports under another name: ``simulator.experiments.explain.explain`` is ``run_explain``, because a public
``explain`` would shadow the submodule (``from simulator import explain`` must stay the module)."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, _, attribute = _LAZY[name].partition(":")
        return getattr(import_module(module), attribute or name)
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
    "calibrate",
    "calibration_spec",
    "compare_runs",
    "discover",
    "format_sweep",
    "list_runs",
    "load_scenario",
    "observe",
    "open_executor",
    "optimize",
    "plot_sobol",
    "plot_tornado",
    "plot_worlds",
    "preset",
    "run_experiment",
    "run_explain",
    "run_replication",
    "run_scenario",
    "run_sensitivity",
    "run_sweep",
    "run_worlds",
    "sensitivity_spec",
    "sweep_spec",
    "tradeoff_figure",
    "waterfall",
    "waterfall_figure",
]
