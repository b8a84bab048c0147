"""The files of a finished run folder as ``inmail-sim report`` reads them: a damaged one is named.

A run folder is written by the simulator, but it can be truncated (a disk filled up, a copy was
cut short), edited by hand or mixed with another tool's files.  Before the report is drawn, each
CSV is checked cheaply (not empty, ends with a complete line, its header has the columns the
report reads); after loading, the key columns must be filled and the number columns numeric.  A
file that cannot be read at all is found by reading the files one by one.  Every problem is a
:class:`DamagedRunFileError` whose message starts with the file's path.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from simulator.core.metrics import BREAKDOWN_METRICS, METRIC_NAMES
from simulator.io.outputs import MEMBER_FILE, TIMESERIES_COLUMNS, with_derived_metrics

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "replications.csv": ("policy", "replication", "seed"),
    "breakdown_replications.csv": ("by", "label", "policy", "replication"),
    "timeseries.csv": ("policy", "replication", "day", "metric"),
    MEMBER_FILE: ("policy", "replication", "quantity", "bin", "members"),
}
"""Per CSV of a run folder: the columns every row must fill."""

NUMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "replications.csv": ("replication", "seed", *METRIC_NAMES),
    "breakdown_replications.csv": ("replication", *BREAKDOWN_METRICS),
    "timeseries.csv": ("replication", "day", "value"),
    MEMBER_FILE: ("replication", "bin", "members"),
}
"""Per CSV: the columns that hold numbers (the report computes with them)."""

HEADER_COLUMNS: dict[str, tuple[str, ...]] = {
    "replications.csv": ("policy", "replication", "seed"),
    "breakdown_replications.csv": ("by", "label", "policy", "replication", *BREAKDOWN_METRICS),
    "timeseries.csv": TIMESERIES_COLUMNS,
}
"""Per CSV: the columns its header must name (the metrics of ``replications.csv`` are checked after
the old names are derived, see :func:`~simulator.io.outputs.with_derived_metrics`)."""


class DamagedRunFileError(ValueError):
    """A file of a run folder is damaged; the message starts with its path and says what is wrong."""


def check_run_files(folder: Path) -> None:
    """Cheap checks of every CSV of ``folder`` before it is read (missing optional files are skipped)."""
    for name in KEY_COLUMNS:
        path = folder / name
        if path.is_file():
            _check_csv_shape(path, HEADER_COLUMNS.get(name, ()))


def _check_csv_shape(path: Path, columns: Sequence[str]) -> None:
    """Not empty, a complete last line, UTF-8 text, and a header naming ``columns``."""
    size = path.stat().st_size
    if size == 0:
        raise DamagedRunFileError(f"{path}: the file is empty")
    with path.open("rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            raise DamagedRunFileError(f"{path}: the file is truncated (its last line is incomplete)")
        handle.seek(0)
        first = handle.readline()
    try:
        header = next(csv.reader([first.decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise DamagedRunFileError(f"{path}: not a CSV text file (not UTF-8)") from None
    missing = [column for column in columns if column not in header]
    if missing:
        raise DamagedRunFileError(f"{path}: missing column(s) {', '.join(missing)} (the header names "
                                  f"{', '.join(header[:8]) or 'nothing'}{', ...' if len(header) > 8 else ''})")


def check_loaded(folder: Path, results: Results) -> None:
    """The frames the report will compute with: key columns filled, number columns numeric."""
    frames = {"replications.csv": results.replications, "breakdown_replications.csv": results.breakdown_replications,
              "timeseries.csv": results.timeseries, MEMBER_FILE: results.member_distribution}
    for name, frame in frames.items():
        if frame is None or frame.empty:
            continue
        path = folder / name
        for column in KEY_COLUMNS[name]:
            if column in frame.columns and frame[column].isna().any():
                line = int(frame.index[frame[column].isna()][0]) + 2
                raise DamagedRunFileError(f"{path}: line {line}: no value in column {column}")
        for column in NUMBER_COLUMNS[name]:
            if column in frame.columns and not pd.api.types.is_numeric_dtype(frame[column]):
                values = pd.to_numeric(frame[column], errors="coerce")
                bad = frame.index[values.isna() & frame[column].notna()]
                where = f"line {int(bad[0]) + 2}: {frame[column].iloc[int(bad[0])]!r}" if len(bad) else "not numbers"
                raise DamagedRunFileError(f"{path}: column {column} must hold numbers ({where})")


def find_damaged(folder: Path, error: Exception) -> DamagedRunFileError:
    """The file whose reading failed with ``error``, read one by one; the folder if no single file is to blame."""
    for name in KEY_COLUMNS:
        path = folder / name
        if not path.is_file():
            continue
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
            if name == "replications.csv":
                frame = with_derived_metrics(frame)
                missing = [m for m in METRIC_NAMES if m not in frame.columns]
                if missing:
                    return DamagedRunFileError(f"{path}: missing column(s) {', '.join(missing)}")
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            return DamagedRunFileError(f"{path}: not a readable CSV table ({type(exc).__name__}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else ''})")
    manifest = folder / "manifest.json"
    try:
        if not isinstance(json.loads(manifest.read_text(encoding="utf-8")), dict):
            return DamagedRunFileError(f"{manifest}: not a JSON object")
    except (ValueError, OSError) as exc:
        return DamagedRunFileError(f"{manifest}: not readable JSON ({type(exc).__name__}: {exc})")
    return DamagedRunFileError(f"{folder}: could not read the run files ({type(error).__name__}: {error})")
