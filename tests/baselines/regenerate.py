"""Regenerate the project's own baselines: one per scenario in ``scenarios/``, run small.

    python tests/baselines/regenerate.py                 # every scenario
    python tests/baselines/regenerate.py old_vs_new      # only these

Each file is what ``inmail-sim baseline save scenarios/NAME.yaml --to tests/baselines/NAME.json
--replications 10 --set ...`` writes, with the ``--set`` list of :func:`small_overrides`; the
overrides, seed and replications are stored in the file, so ``tests/test_baselines.py`` re-runs
each scenario exactly as it was saved.  Regenerate after a deliberate change of the model or of
a scenario file, and say why in the commit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from simulator.experiments.baseline import save_baseline
from simulator.experiments.experiment import run_experiment
from simulator.scenario import load_scenario, shrink_overrides

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
HERE = Path(__file__).resolve().parent

REPLICATIONS = 10
"""Per policy: enough for a standard error, small enough for CI (a few seconds per scenario)."""

HORIZON_DAYS: dict[str, int] = {"transition_2015": 150}
"""Scenario-specific horizons: transition_2015 starts 2014-10-01 and must reach the 2015-02-01 switch."""


def small_overrides(path: Path) -> list[str]:
    """The ``--set`` list that makes a shipped scenario small: 2,000 members, ~60 recruiters, 60 days."""
    return shrink_overrides(path, members=2000, recruiters=60, horizon_days=HORIZON_DAYS.get(path.stem, 60),
                            replications=REPLICATIONS)


def regenerate(name: str) -> Path:
    """Run scenario ``name`` small and write ``tests/baselines/NAME.json``."""
    path = SCENARIOS / f"{name}.yaml"
    results = run_experiment(load_scenario(path, small_overrides(path)))
    target = HERE / f"{name}.json"
    save_baseline(results, target, scenario_file=f"scenarios/{path.name}")
    return target


def main(names: list[str]) -> int:
    names = names or sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
    unknown = [n for n in names if not (SCENARIOS / f"{n}.yaml").is_file()]
    if unknown:
        print(f"no such scenario(s) in {SCENARIOS}: {', '.join(unknown)}", file=sys.stderr)
        return 2
    for name in names:
        t0 = time.perf_counter()
        target = regenerate(name)
        print(f"{name}: {target.relative_to(ROOT)} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
