"""The files of ``inmail-sim discover``: ``boxes.csv``, ``trajectory.csv``, ``tradeoff.png``, ``discovery.json``.

Written atomically (:func:`~simulator.experiments.runner.atomic_write`), ``discovery.json`` last,
into ``RUN_DIR/discover/`` or the folder given. When there is no box to draw (the condition holds in
no world or in all, or no step passes the choice rule) ``tradeoff.png`` is drawn only if the
trajectory has points, and a ``tradeoff.png`` of an earlier call is removed so no stale figure stays.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from simulator.experiments.discovery import DiscoveryResult
from simulator.experiments.runner import atomic_write

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DISCOVER_DIR = "discover"
"""The default output folder, inside the run folder."""


def tradeoff_figure(result: DiscoveryResult) -> Figure:
    """The trade-off figure of ``result`` (the reported box starred); matplotlib loads on first use."""
    from simulator.io.plotting.discovery_figures import tradeoff

    box = None if result.prim is None or result.prim.box is None else result.prim.box
    return tradeoff(result.trajectory, None if box is None else (box.coverage, box.density),
                    title=f"where {result.condition.text}", min_coverage=result.settings.min_coverage)


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=False)

    return write


def write_discovery(result: DiscoveryResult, out: str | Path, *, figure: bool = True) -> list[Path]:
    """Write the four files into ``out`` (created if needed); return the paths written."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("boxes.csv", result.boxes), ("trajectory.csv", result.trajectory)):
        atomic_write(folder / name, _csv_writer(frame))
        written.append(folder / name)
    png = folder / "tradeoff.png"
    if figure and len(result.trajectory):
        from simulator.io.plotting.canvas import render_png

        data = render_png(tradeoff_figure(result))
        atomic_write(png, lambda tmp: tmp.write_bytes(data))
        written.append(png)
    else:
        with contextlib.suppress(FileNotFoundError):
            png.unlink()
    text = json.dumps(result.to_dict() | {"files": [p.name for p in written] + ["discovery.json"]}, indent=2,
                      default=str) + "\n"
    atomic_write(folder / "discovery.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    written.append(folder / "discovery.json")
    return written
