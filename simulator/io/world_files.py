"""The files of a run across plausible worlds, and the view the public API returns.

Next to the usual run files (:func:`~simulator.io.outputs.write_run`): ``worlds.csv`` (replication,
world, one column per uncertain parameter), ``world_outcomes.csv`` (replication, world, policy, every
metric), ``worlds_comparison.csv`` and ``robustness.csv``; the manifest gets a ``worlds`` entry and the
run's fingerprint with the worlds in it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.experiments.provenance import run_fingerprint
from simulator.experiments.world_study import WorldResults, with_worlds_fingerprint
from simulator.io.outputs import write_run
from simulator.io.view import ResultsView

WORLD_FILES: tuple[str, ...] = ("worlds.csv", "world_outcomes.csv", "worlds_comparison.csv", "robustness.csv")
"""The files a run across worlds adds to the run folder."""


def _csv(frame: pd.DataFrame) -> Callable[[Path], object]:
    return lambda p: frame.to_csv(p, index=False)


def world_files(res: WorldResults) -> list[tuple[str, Callable[[Path], object]]]:
    """``(name, write)`` of every worlds file."""
    frames = (res.worlds, res.world_outcomes, res.worlds_comparison, res.robustness)
    return [(name, _csv(frame)) for name, frame in zip(WORLD_FILES, frames, strict=True)]


def write_worlds_run(res: WorldResults, out: str | Path, *, argv: Sequence[str] | None = None,
                     started: dt.datetime | None = None, finished: dt.datetime | None = None,
                     workers: int | None = None, executor: str | None = None,
                     index: str | Path | bool | None = None) -> Path:
    """Write the run folder of ``res``: the usual files, the worlds files, the manifest (last)."""
    extra = {"worlds": res.manifest_entry,
             "fingerprint": with_worlds_fingerprint(run_fingerprint(res.scenario), res.plan)}
    return write_run(res.results, out, argv=argv, started=started, finished=finished, workers=workers,
                     executor=executor, index=index, extra_files=world_files(res), manifest_extra=extra)


@dataclass
class WorldsView:
    """What :func:`simulator.run_worlds` returns: the worlds tables as DataFrames, ``table()`` and ``write()``.

    ``worlds_comparison`` and ``robustness`` are the two answers; ``worlds`` and ``world_outcomes`` the
    per-replication data behind them; ``results`` the plain results of every replication (its
    ``comparison`` pools all worlds, so read the worlds tables for the answer).
    """

    study: WorldResults

    @property
    def results(self) -> ResultsView:
        return ResultsView.of(self.study.results)

    @property
    def worlds_comparison(self) -> pd.DataFrame:
        return self.study.worlds_comparison

    @property
    def robustness(self) -> pd.DataFrame:
        return self.study.robustness

    @property
    def worlds(self) -> pd.DataFrame:
        return self.study.worlds

    @property
    def world_outcomes(self) -> pd.DataFrame:
        return self.study.world_outcomes

    def table(self) -> str:
        """What ``inmail-sim run --worlds`` prints."""
        from simulator.io.world_tables import format_worlds

        return format_worlds(self.study)

    def write(self, out: str | Path, **options: Any) -> Path:
        """Write the run folder (the files of ``inmail-sim run --worlds --out``)."""
        return write_worlds_run(self.study, out, **options)
