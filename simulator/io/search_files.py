"""The output folder of ``inmail-sim optimize`` and its printed summary.

Files (docs/optimize.md has the columns): ``trials.csv``, ``pareto.csv``, ``references.csv``,
``hypervolume.csv``, ``pareto_policies.yaml`` (each Pareto policy as a policy block ``inmail-sim run``
accepts as is), ``search.json``, ``pareto.png``, ``convergence.png``; the study itself is
``study.journal`` (Optuna's journal storage) and every replication is in ``replications/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from simulator.core.presets import preset
from simulator.experiments.runner import atomic_write
from simulator.experiments.search import SearchResult
from simulator.io.plotting.canvas import render_png
from simulator.io.plotting.search_figures import convergence_figure, pareto_figure
from simulator.io.policy_rules import rules_side_by_side
from simulator.io.tables import METRIC_LABELS, num

COMPARED_WITH = "new_2015"
"""The preset every recommended policy is compared with, rule by rule."""


def _text(path: Path, text: str) -> Path:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def _png(path: Path, data: bytes) -> Path:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))
    return path


def _csv(path: Path, frame: pd.DataFrame) -> Path:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    return path


def policies_yaml(result: SearchResult) -> str:
    """``policies: {pareto_01: {preset: ..., <rules>}, ...}``, pasteable under a scenario's ``policies:``."""
    header = (f"# Pareto policies of the search of {result.scenario.name} (inmail-sim optimize): each block is the "
              f"{result.spec.base} preset with the searched rules set;\n# paste any of them under a scenario's "
              "policies: and run it with `inmail-sim run`.\n")
    blocks = {name: _plain(block) for name, block in result.blocks.items()}
    return header + yaml.safe_dump({"policies": blocks}, sort_keys=False, allow_unicode=True, width=100)


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (YAML writes them as plain numbers)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.item() if hasattr(value, "item") else value


def write_search(result: SearchResult, out: str | Path, argv: Sequence[str] | None = None) -> list[Path]:
    """Write every file of the search into ``out``; return their paths (figures that fail are noted)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = [_csv(folder / "trials.csv", result.trials), _csv(folder / "pareto.csv", result.pareto),
             _csv(folder / "references.csv", result.references),
             _csv(folder / "hypervolume.csv", result.hypervolume),
             _text(folder / "pareto_policies.yaml", policies_yaml(result))]
    info = dict(result.info) | {"argv": list(argv) if argv is not None else None}
    objectives = [(o.metric, o.direction) for o in result.spec.objectives]
    makers = {"pareto.png": lambda: pareto_figure(result.trials, result.pareto, result.references, objectives),
              "convergence.png": lambda: convergence_figure(result.hypervolume)}
    for name, make in makers.items():
        try:
            data = render_png(make())
        except Exception as exc:  # a broken figure must not cost the tables
            info.setdefault("figure_errors", {})[name] = f"{type(exc).__name__}: {exc}"
            continue
        files.append(_png(folder / name, data))
    files.append(_text(folder / "search.json", json.dumps(info, indent=2, default=str) + "\n"))
    return files


# --------------------------------------------------------------------------- the printed summary


def _interval(row: pd.Series, metric: str) -> str:
    return f"{num(row[f'{metric}_mean'])} [{num(row[f'{metric}_ci_low'])}, {num(row[f'{metric}_ci_high'])}]"


def format_search(result: SearchResult) -> str:
    """The best policy under the constraints for each objective, its objectives against the presets, and how
    it differs from new_2015 rule by rule (the rows of ``inmail-sim policies diff``)."""
    info = result.info
    lines = [f"policy search of {result.scenario.name}: {info['trials_told']} trials "
             f"({info['sampler']['name']}, seed {info['seed']}), "
             f"{info['replications']['simulated']} replications simulated in {info['seconds']['total']:.0f} s "
             f"({info['seconds']['simulation']:.0f} s simulation)"]
    if not result.finished:
        lines.append("stopped before the last trial: the Pareto set is not computed; run the same command again "
                     "to resume")
        return "\n".join(lines)
    constraints = " and ".join(c.text for c in result.spec.constraints) or "no constraints"
    feasible = int(result.trials["feasible"].astype(bool).sum()) if len(result.trials) else 0
    lines.append(f"constraints: {constraints}; {feasible} trial(s) met them; Pareto set: {len(result.pareto)} "
                 f"policies (re-evaluated on {info['precision']['reevaluated_replications']} replications)")
    if result.pareto.empty:
        lines.append("no policy met every constraint (with its 95% CI bound): loosen a constraint or widen a lever")
        return "\n".join(lines)
    lines += closest_lines(result)
    refs = result.references.set_index("name")
    best_at: dict[str, list[str]] = {}
    for best in info["best_under_constraints"]:
        best_at.setdefault(best["name"], []).append(best["objective"])
    for name, objectives in best_at.items():
        row = result.pareto.set_index("name").loc[name]
        lines += ["", f"best at {' and at '.join(objectives)} under {constraints}: {name}"]
        for o in result.spec.objectives:
            label = METRIC_LABELS.get(o.metric, o.metric)
            presets = "  ".join(f"{name} {num(refs.loc[name, f'{o.metric}_mean'])}" for name in refs.index)
            lines.append(f"  {label:<34} {_interval(row, o.metric):<36} {presets}")
        lines += _rule_diff(result, name)
    return "\n".join(lines)


def _rule_diff(result: SearchResult, name: str) -> list[str]:
    """The rules where ``name`` differs from new_2015 (as ``inmail-sim policies diff`` shows them)."""
    keys, values, differ = rules_side_by_side([preset(COMPARED_WITH), result.policies[name]])
    del keys
    if not differ:
        return [f"  same rules as {COMPARED_WITH}"]
    out = [f"  {'rule':<44} {COMPARED_WITH:<14} {name}"]
    out += [f"  {rule:<44} {values[0].get(rule, '-'):<14} {values[1].get(rule, '-')}" for rule in differ]
    return out


def closest_lines(result: SearchResult, shown: int = 6) -> list[str]:
    """The "closest to new_2015" lines: the Pareto policies that dominate it (or the nearest one), and the
    largest gain in the first objective at new_2015's level of the others (search.json closest_to_new_2015)."""
    closest = result.info.get("closest_to_new_2015")
    if not closest:
        return []
    ref = closest["reference"]
    beat = closest["dominated_by"]
    nearest = closest["nearest"]
    if beat:
        names = ", ".join(beat[:shown]) + (f" and {len(beat) - shown} more" if len(beat) > shown else "")
        head = (f"closest to {ref}: {len(beat)} Pareto polic{'y is' if len(beat) == 1 else 'ies are'} no worse on "
                f"every objective and better on one ({names}); nearest: {nearest['name']}")
    else:
        head = (f"closest to {ref}: no Pareto policy is no worse on every objective; nearest: {nearest['name']}")
    lines = ["", head + f" (normalised distance {nearest['distance']:.3f})"]
    gain = closest.get("gain") or {}
    metric = gain.get("objective", " ").split(" ", 1)[1]
    label = METRIC_LABELS.get(metric, metric)
    if gain.get("name") is None:
        lines.append(f"  largest gain in {label}: none ({gain.get('note', 'not computed')})")
        return lines
    ci = (f" [{_signed(gain['ci_low'])}, {_signed(gain['ci_high'])}]" if gain.get("ci_low") is not None else "")
    relative = f" ({gain['relative'] * 100:+.1f}%)" if gain.get("relative") is not None else ""
    lines.append(f"  largest gain in {label} at {gain['at']}: {gain['name']} {_signed(gain['difference'])}{ci}"
                 f"{relative} vs {ref} {num(gain['reference_mean'])}")
    return lines


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + num(abs(value))
