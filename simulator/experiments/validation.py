"""Model validity, figure by figure: what the calibrated model reproduces, predicts and cannot compare.

``inmail-sim validate-model`` (docs/validation.md):

1. the Bayesian calibration on every target (:func:`~.bayes_calibration.bayes_calibrate`), or a
   posterior read back from a folder (``--posterior``) and run again on fresh replications;
2. **leave-one-out**: for every target in turn, a calibration on the others and the left-out
   figure's posterior predictive - does the model *predict* the figure it was not fitted to?
3. the anecdotes and the figure no target reads (:mod:`.anecdotes`), per posterior world;
4. one row per figure (:func:`validation_table`): model quantity, posterior predictive median and
   95% interval, the published value, covered | missed | not comparable, and the LOO prediction.

A figure is **covered** when its 95% predictive interval overlaps the published band (contains a
published point); **missed** otherwise; **not comparable** when the model has no counterpart.
Every calibration stores its worlds as it goes (a :class:`TaskStore` per calibration), so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.presets import NEW_PHASE, OLD_PHASE
from simulator.experiments.anecdotes import anecdote_task, ignore_share
from simulator.experiments.bayes_calibration import (
    BayesResult,
    BayesSettings,
    BayesSpec,
    bayes_calibrate,
    bayes_spec,
    open_store,
    spec_settings,
)
from simulator.experiments.observation import Observation
from simulator.experiments.posterior_predictive import posterior_predictive
from simulator.experiments.provenance import run_fingerprint
from simulator.experiments.runner import Progress, Task, TaskKey, TaskStore, failure_report, run_tasks
from simulator.experiments.target_bands import Band
from simulator.experiments.validation_rows import Prediction, extra_rows, figure_rows, predict, verdict
from simulator.experiments.world_evaluation import Setting, WorldEvaluator
from simulator.scenario import Scenario
from simulator.scenario.uncertain import world_market

__all__ = ["PosteriorFileError", "Prediction", "ValidationResult", "ValidationSettings", "held_out_spec",
           "leave_one_out", "predict", "read_posterior", "validate_model", "verdict"]


class PosteriorFileError(ValueError):
    """A ``--posterior`` folder that does not fit the scenario: which file, which field, what is allowed."""

    def __init__(self, file: Path, field_name: str, message: str) -> None:
        self.file, self.field_name = file, field_name
        super().__init__(f"{file}: {field_name}: {message}")


@dataclass(frozen=True)
class ValidationSettings:
    """How much work: worlds of the full calibration and of each leave-one-out calibration."""

    worlds: int = 200
    loo_worlds: int = 100
    design: int | None = None
    replications: int | None = None
    loo: bool = True
    anecdote_worlds: int = 20


def leave_one_out(bands: Sequence[Band],
                  fit_without: Callable[[Band], tuple[np.ndarray, np.ndarray]]) -> dict[str, Prediction]:
    """For each band: ``fit_without(band)`` -> (the left-out figure's value in each posterior world of a fit
    on the others, their weights); its prediction."""
    out = {}
    for band in bands:
        values, weights = fit_without(band)
        out[band.name] = predict(band, values, weights)
    return out


def held_out_spec(spec: BayesSpec, name: str) -> BayesSpec:
    """The calibration on every target but ``name``, predicting ``name`` (and no validation figure)."""
    left = tuple(t for t in spec.targets if t.name == name)
    return dataclasses.replace(spec, targets=tuple(t for t in spec.targets if t.name != name), checks=(),
                               held_out=left)


def read_posterior(folder: Path, spec: BayesSpec) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(worlds x parameters, weights, replications per world if recorded) of ``folder``'s posterior.csv;
    :class:`PosteriorFileError` when it is missing or its columns are not the uncertain: block's."""
    path = folder / "posterior.csv"
    if not path.is_file():
        raise PosteriorFileError(path, "file", "not found; --posterior takes the folder of `inmail-sim calibrate` "
                                               "(or of validate-model: DIR/calibration)")
    frame = pd.read_csv(path)
    expected = ["world", "weight", *spec.names]
    if list(frame.columns) != expected:
        raise PosteriorFileError(path, "columns", f"{', '.join(map(str, frame.columns))} do not match the "
                                 f"scenario's uncertain: block; allowed: {', '.join(expected)}")
    weights = frame["weight"].to_numpy(dtype=np.float64)
    if len(frame) == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise PosteriorFileError(path, "weight", "needs at least one world and finite weights >= 0 with a "
                                                 "positive sum")
    replications = None
    manifest = folder / "calibration.json"
    if manifest.is_file():
        import json

        replications = json.loads(manifest.read_text(encoding="utf-8")).get("replications_per_world")
    return frame[spec.names].to_numpy(dtype=np.float64), weights / weights.sum(), replications


@dataclass
class ValidationResult:
    """Everything ``validate-model`` writes: the posterior and its predictive, the LOO fits, the table."""

    scenario: Scenario
    spec: BayesSpec
    settings: ValidationSettings
    thetas: np.ndarray
    weights: np.ndarray
    values: dict[str, np.ndarray]
    full: BayesResult | None = None
    loo: dict[str, BayesResult] = field(default_factory=dict)
    loo_predictions: dict[str, Prediction] = field(default_factory=dict)
    anecdotes: pd.DataFrame = field(default_factory=pd.DataFrame)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    posterior_folder: Path | None = None


def _bayes_settings(settings: ValidationSettings, worlds: int) -> BayesSettings:
    return BayesSettings(worlds=worlds, design=settings.design if worlds == settings.worlds else None,
                         replications=settings.replications)


def _reused_predictive(scenario: Scenario, spec: BayesSpec, thetas: np.ndarray, weights: np.ndarray,
                       replications: int, executor: Executor, out: Path,
                       progress: Progress | None) -> dict[str, np.ndarray]:
    """A read-back posterior's predictive of every figure (stored per world in ``out/predictive``)."""
    settings = spec_settings(scenario, spec)
    store = open_store(out / "predictive", {**run_fingerprint(scenario), "spec": repr(spec),
                                            "thetas": repr(thetas.tolist()), "replications": replications})
    evaluator = WorldEvaluator(scenario.market, spec.parameters, settings, scenario.root_seed, spec.bands,
                               replications, executor, store, progress=progress)
    return posterior_predictive(evaluator, spec.bands, spec.check_bands, settings, thetas, weights,
                                replications)[2]


def _anecdote_settings(scenario: Scenario, spec: BayesSpec) -> tuple[Setting, Setting] | None:
    """The settings of the first validation figure comparing the 2014 rules (baseline) with the 2015 rules
    (the presets' phases, no switch date), if any: the anecdotes' before and after."""
    by_name = {s.name: s for s in spec_settings(scenario, spec)}
    for band in spec.check_bands:
        base, other = by_name.get(band.baseline or ""), by_name.get(band.setting or "")
        if (base is not None and other is not None and base.policy.phase == OLD_PHASE
                and other.policy.phase == NEW_PHASE and other.policy.switch_date is None):
            return base, other
    return None


def run_anecdotes(scenario: Scenario, spec: BayesSpec, thetas: np.ndarray, weights: np.ndarray, count: int,
                  executor: Executor, out: Path) -> pd.DataFrame:
    """Per world (the ``count`` heaviest posterior worlds): the anecdote quantities and the ignore share."""
    order = np.argsort(-weights, kind="stable")
    rows: list[dict[str, Any]] = []
    for i in range(len(thetas)):
        market = world_market(scenario.market, spec.parameters, [float(v) for v in thetas[i]])
        rows.append({"world": i, "weight": float(weights[i]), "ignore_share": ignore_share(market)})
    frame = pd.DataFrame(rows)
    pair = _anecdote_settings(scenario, spec)
    if pair is None or count <= 0:
        return frame
    picked = [int(i) for i in order[:count]]
    store = TaskStore(out / "anecdotes", Observation.from_arrays)
    tasks = [Task(TaskKey("anecdote", i), anecdote_task, (scenario.market, spec.parameters, thetas[i], pair[0],
                                                          pair[1], scenario.root_seed, 0)) for i in picked]
    run = run_tasks(tasks, executor, store)
    if run.failures:
        raise RuntimeError(f"{len(run.failures)} anecdote world(s) failed:\n{failure_report(run.failures)}")
    for task, i in zip(tasks, picked, strict=True):
        for key, value in run.results[task.key].values.items():
            frame.loc[i, key] = value
    return frame


def validate_model(scenario: Scenario, executor: Executor, out: str | Path, *,
                   settings: ValidationSettings | None = None, posterior: Path | None = None,
                   progress: Progress | None = None, note: Callable[[str], None] | None = None,
                   on_fit: Callable[[str, BayesResult], None] | None = None) -> ValidationResult:
    """Calibrate (or read ``posterior``), leave each target out in turn, measure the anecdotes; tabulate.

    ``on_fit(subfolder, result)`` is called as each calibration finishes (the CLI writes its files then,
    so a long leave-one-out never holds back the full calibration's posterior)."""
    settings = settings or ValidationSettings()
    folder = Path(out)
    spec = bayes_spec(scenario)
    say = note or (lambda _: None)
    full = None
    if posterior is not None:
        thetas, weights, recorded = read_posterior(posterior, spec)
        say(f"posterior: {len(thetas)} worlds read from {posterior}")
        values = _reused_predictive(scenario, spec, thetas, weights, settings.replications or recorded or 2,
                                    executor, folder, progress)
    else:
        say(f"calibration on every target ({settings.worlds} worlds)")
        full = bayes_calibrate(scenario, executor, spec=spec, settings=_bayes_settings(settings, settings.worlds),
                               out=folder / "calibration", progress=progress)
        if on_fit is not None:
            on_fit("calibration", full)
        thetas, weights, values = full.abc.thetas, full.abc.weights, full.figure_values
    result = ValidationResult(scenario, spec, settings, thetas, weights, values, full, posterior_folder=posterior)
    if settings.loo:
        def fit_without(band: Band) -> tuple[np.ndarray, np.ndarray]:
            say(f"leave-one-out: calibration without {band.name} ({settings.loo_worlds} worlds)")
            res = bayes_calibrate(scenario, executor, spec=held_out_spec(spec, band.name),
                                  settings=_bayes_settings(settings, settings.loo_worlds),
                                  out=folder / "loo" / band.name, progress=progress)
            result.loo[band.name] = res
            if on_fit is not None:
                on_fit(f"loo/{band.name}", res)
            return res.figure_values[band.name], res.abc.weights

        result.loo_predictions = leave_one_out(spec.bands, fit_without)
    say("anecdotes")
    result.anecdotes = run_anecdotes(scenario, spec, thetas, weights, settings.anecdote_worlds, executor, folder)
    result.table = validation_table(result)
    return result


THIN_ESS = 20
"""A leave-one-out posterior with fewer effective worlds is flagged as thin (its interval is too narrow)."""


def validation_table(result: ValidationResult) -> pd.DataFrame:
    """One row per figure: the targets, the validation figures, the extra figures and anecdotes."""
    rows = figure_rows(result.spec, result.values, result.weights, result.loo_predictions)
    for row in rows:  # a leave-one-out that did not converge or rests on a few worlds says so
        fit = result.loo.get(row["figure"])
        if fit is not None and not fit.abc.converged:
            weak = (f"leave-one-out calibration not converged (tolerance {fit.abc.tolerance:.3g}, ESS "
                    f"{fit.abc.ess:.0f}): not a prediction")
            row["note"] = "; ".join(filter(None, [row["note"], weak]))
        elif fit is not None and fit.abc.ess < THIN_ESS:
            weak = (f"the leave-one-out posterior is thin (ESS {fit.abc.ess:.0f} of {len(fit.abc.weights)} "
                    "worlds): its interval is too narrow, the verdict stands only if the miss is clear")
            row["note"] = "; ".join(filter(None, [row["note"], weak]))
    rows += extra_rows(result.anecdotes)
    return pd.DataFrame(rows)


def summary_counts(table: pd.DataFrame) -> Mapping[str, int]:
    """How many figures are covered, missed, not comparable."""
    return {k: int((table["verdict"] == k).sum()) for k in ("covered", "missed", "not comparable")}
