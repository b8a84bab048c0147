"""The calibration objective: target residuals of the replication means, on common random numbers.

The objective is the weighted sum of squared target residuals (:meth:`Target.residual`) plus a
small ridge towards the starting values (``regularization``), minimized with
``scipy.optimize.minimize`` (Nelder-Mead or Powell, bounded) over the unit cube of the ranges.
Every evaluation runs the *same* replication indices ``0..replications-1`` (common random
numbers), so the objective is a deterministic function of the parameters, not a noisy one.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import optimize

from simulator.experiments.calibration_spec import CalibrationSpec, apply_values, parameter_overrides
from simulator.experiments.observation import observe_task, observe_tasks
from simulator.experiments.runner import Progress, Task, TaskKey, failure_report, run_tasks
from simulator.scenario import Scenario


class CalibrationRunError(RuntimeError):
    """Replications failed during calibration."""


def run_observations(scenario: Scenario, policy: str, indices: Sequence[int], executor: Executor,
                     label: str = "calibration") -> dict[str, np.ndarray]:
    """Observables of ``policy`` for each replication index: ``{key: values in index order}``."""
    fitted_policy = scenario.policies[policy]
    tasks = [Task(TaskKey(label, i), observe_task,
                  (scenario.market, fitted_policy, scenario.run, scenario.root_seed, i), observe_tasks)
             for i in indices]
    run = run_tasks(tasks, executor)
    if run.failures:
        raise CalibrationRunError(f"{len(run.failures)} replication(s) failed:\n{failure_report(run.failures)}")
    observations = [run.results[task.key].values for task in tasks]
    return {key: np.array([o.get(key, math.nan) for o in observations], dtype=np.float64)
            for key in observations[0]}


@dataclass
class Evaluation:
    """One objective evaluation: parameter values, target means (and standard errors), loss."""

    number: int
    theta: tuple[float, ...]
    means: dict[str, float]
    loss: float
    seconds: float
    ses: dict[str, float] = field(default_factory=dict)


class Objective:
    """The calibration objective on common random numbers, with a cache and an on-disk trace."""

    def __init__(self, scenario: Scenario, spec: CalibrationSpec, executor: Executor,
                 trace: Path | None = None, progress: Progress | None = None, steps_after: int = 0) -> None:
        """``progress(done, total)`` after each new evaluation; ``total`` counts ``steps_after`` more steps
        (what the calibration does after the fit) besides the evaluation budget."""
        self.scenario, self.spec, self.executor = scenario, spec, executor
        self.steps_after = steps_after
        self.indices = list(range(spec.replications))
        self.evaluations: list[Evaluation] = []
        self._cache: dict[tuple[float, ...], Evaluation] = {}
        self.trace = trace
        self.progress = progress
        if trace is not None:
            header = ["evaluation", *spec.names, "loss", *[t.name for t in spec.targets], "seconds"]
            with trace.open("w", newline="", encoding="utf-8") as fh:
                csv.writer(fh).writerow(header)

    def theta(self, u: np.ndarray) -> tuple[float, ...]:
        """Parameter values from unit-cube coordinates (clipped; whole numbers where needed)."""
        return tuple(p.clip(p.low + float(np.clip(x, 0.0, 1.0)) * (p.high - p.low))
                     for p, x in zip(self.spec.parameters, u, strict=True))

    def unit(self, theta: Sequence[float] | np.ndarray) -> np.ndarray:
        """Unit-cube coordinates of parameter values (inverse of :meth:`theta` inside the ranges)."""
        return np.array([(x - p.low) / (p.high - p.low) for p, x in zip(self.spec.parameters, theta, strict=True)])

    def loss_of(self, theta: Sequence[float], means: Mapping[str, float], ses: Mapping[str, float] | None = None,
                ) -> float:
        ses = ses or {}
        fit = sum(t.weight * t.residual(means[t.key], ses.get(t.key, 0.0)) ** 2 for t in self.spec.targets)
        ridge = sum(((x - p.start) / (p.high - p.low)) ** 2 for p, x in zip(self.spec.parameters, theta, strict=True))
        return float(fit + self.spec.regularization * ridge)

    def evaluate(self, theta: tuple[float, ...]) -> Evaluation:
        key = tuple(round(x, 12) for x in theta)
        if key in self._cache:
            return self._cache[key]
        started = time.monotonic()
        world = apply_values(self.scenario, parameter_overrides(self.scenario, self.spec.parameters, theta))
        observed = run_observations(world, self.spec.policy, self.indices, self.executor)
        means = {t.key: float(np.mean(observed[t.key])) for t in self.spec.targets}
        n = len(self.indices)
        ses = {t.key: float(np.std(observed[t.key], ddof=1) / math.sqrt(n)) if n > 1 else 0.0
               for t in self.spec.targets}
        ev = Evaluation(len(self.evaluations), theta, means, self.loss_of(theta, means, ses),
                        time.monotonic() - started, ses)
        self.evaluations.append(ev)
        self._cache[key] = ev
        self._write(ev)
        if self.progress is not None:
            done = len(self.evaluations)
            self.progress(done, max(done, self.spec.max_evaluations) + self.steps_after)
        return ev

    def __call__(self, u: np.ndarray) -> float:
        return self.evaluate(self.theta(u)).loss

    def _write(self, ev: Evaluation) -> None:
        if self.trace is None:
            return
        row = [ev.number, *ev.theta, ev.loss, *[ev.means[t.key] for t in self.spec.targets], round(ev.seconds, 3)]
        with self.trace.open("a", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerow(row)

    @property
    def best(self) -> Evaluation | None:
        return min(self.evaluations, key=lambda e: e.loss) if self.evaluations else None


def minimize(objective: Objective) -> optimize.OptimizeResult:
    """Bounded Nelder-Mead (initial simplex 20% of each range) or Powell over the unit cube."""
    spec = objective.spec
    k = len(spec.parameters)
    u0 = np.clip(objective.unit(spec.start), 0.0, 1.0)
    bounds = [(0.0, 1.0)] * k
    if spec.method == "powell":
        return optimize.minimize(objective, u0, method="Powell", bounds=bounds,
                                 options={"maxfev": spec.max_evaluations, "xtol": spec.tolerance,
                                          "ftol": spec.tolerance})
    simplex = [u0]
    for j in range(k):
        step = 0.2 if u0[j] + 0.2 <= 1.0 else -0.2
        v = u0.copy()
        v[j] += step
        simplex.append(v)
    return optimize.minimize(objective, u0, method="Nelder-Mead", bounds=bounds,
                             options={"maxfev": spec.max_evaluations, "xatol": spec.tolerance,
                                      "fatol": spec.tolerance, "initial_simplex": np.array(simplex)})
