"""The ask/tell loop of a search, independent of what a trial costs (a simulation or a test function).

Generation by generation: ask ``population`` trials (the sampler of generation ``g`` seeded from the
search seed and ``g``), evaluate them together (``evaluate`` may spread them over workers), and tell
the results in trial order, so serial and parallel runs ask and tell the same sequence.  The study
lives in its storage (a journal file in the output folder): a trial asked but not told when the
search stopped is evaluated again on resume (its replications come back from the task store) and
told, and the sampler of its generation is rebuilt from the same seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator.experiments.search_space import (
    distributions,
    generation_seed,
    lever_settings,
    make_sampler,
)
from simulator.scenario.optimize_schema import Lever

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Outcome:
    """What evaluating one trial gave: objective ``values`` (None: the trial failed), constraint
    ``violations`` (<= 0 met), and attributes kept with the trial in the study."""

    values: tuple[float, ...] | None
    violations: tuple[float, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)


Evaluate = Callable[[Sequence[tuple[int, dict[str, Any]]]], list[Outcome]]
"""``[(trial number, lever settings), ...]`` -> one outcome per trial, in the same order."""


@dataclass(frozen=True)
class DriveSettings:
    levers: tuple[Lever, ...]
    trials: int
    population: int
    sampler: str
    seed: int
    stop_after: int | None = None
    """Stop (as if interrupted) once this many trials have been told in this call (tests)."""


def open_study(directions: Sequence[str], journal: str | None, name: str = "optimize") -> optuna.Study:
    """The study, created or loaded from ``journal`` (a JournalFileBackend file; None: in memory)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage: Any = None
    if journal is not None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        storage = JournalStorage(JournalFileBackend(journal))
    return optuna.create_study(storage=storage, study_name=name, directions=[str(d) for d in directions],  # type: ignore[misc]
                               load_if_exists=True)


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The told trials (complete or failed), by number."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.FAIL)]


def drive(study: optuna.Study, settings: DriveSettings, evaluate: Evaluate) -> bool:
    """Ask, evaluate and tell until ``settings.trials`` trials are told; False if stopped early."""
    import optuna
    from optuna.trial import TrialState

    dists = distributions(settings.levers)
    told = len(finished_trials(study))
    told_here = 0
    pending = [optuna.trial.Trial(study, t._trial_id)
               for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    while told < settings.trials:
        study.sampler = make_sampler(settings.sampler, settings.population,
                                     generation_seed(settings.seed, told // settings.population))
        if pending:
            batch, pending = pending, []
        else:
            batch = [study.ask(dists) for _ in range(min(settings.population, settings.trials - told))]
        outcomes = evaluate([(t.number, lever_settings(t.params, settings.levers)) for t in batch])
        for trial, outcome in zip(batch, outcomes, strict=True):
            if settings.stop_after is not None and told_here >= settings.stop_after:
                return False
            for key, value in outcome.attrs.items():
                trial.set_user_attr(key, value)
            for i, violation in enumerate(outcome.violations):
                trial.set_constraint(f"constraint_{i}", float(violation))
            if outcome.values is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, list(outcome.values))
            told += 1
            told_here += 1
    return True
