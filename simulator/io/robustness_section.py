"""Parts of the report's "How sure is this?" section: robustness across worlds and scenario discovery.

Robustness (``robustness.csv``): the share of worlds where each policy meets the ``decision:``
requirements (with the 95% Wilson interval of meeting them all) and each policy's regret against the
best policy of each world.  Discovery (``discover/discovery.json`` and ``tradeoff.png`` of
``inmail-sim discover``): the region of assumptions where a condition holds, in a sentence and a table.
The readers here turn an unreadable file into a :class:`WorldsFileError` naming it; the report shows
the message in the file's place.
"""

from __future__ import annotations

import base64
import json
import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.io.tables import METRIC_LABELS, METRIC_UNITS, MISSING, RATE_METRICS, num, scale_of
from simulator.io.tables import escape_html as _escape

if TYPE_CHECKING:
    from simulator.experiments.experiment import Results

ROBUSTNESS_COLUMNS: tuple[str, ...] = ("policy", "measure", "metric", "statistic", "value")
ALL_REQUIREMENTS = "all requirements"
DISCOVER_DIR = "discover"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class WorldsFileError(ValueError):
    """A worlds file of the run folder that cannot be read (the message names it and says why)."""


def read_table(path: Path, columns: tuple[str, ...], text: tuple[str, ...], empty: bool = False) -> pd.DataFrame:
    """``path`` as a frame with ``columns`` (those not in ``text`` numeric; no rows only if ``empty``); else
    :class:`WorldsFileError`."""
    try:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise WorldsFileError(f"{path.name} cannot be read: {type(exc).__name__}: {exc}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise WorldsFileError(f"{path.name} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if frame.empty and empty:
        return frame
    for column in columns:
        if column not in text and not pd.api.types.is_numeric_dtype(frame[column]):
            raise WorldsFileError(f"{path.name}: column {column} is not numeric")
    if frame.empty:
        raise WorldsFileError(f"{path.name} has no rows")
    return frame


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; else :class:`WorldsFileError`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WorldsFileError(f"{path.name} cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise WorldsFileError(f"{path.name} is not a JSON object")
    return data


def embedded_png(data: bytes, alt: str, caption: str) -> str:
    """A figure of PNG bytes as a data URI, with its caption."""
    encoded = base64.b64encode(data).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{encoded}\" alt=\"{_escape(alt)}\">"
            f"<figcaption>{_escape(caption)}</figcaption></figure>")


def _pct(value: float) -> str:
    return MISSING if not math.isfinite(value) else f"{value * 100:.0f}%"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --------------------------------------------------------------------------- robustness


def robustness_part(folder: Path, results: Results) -> str:
    """Satisficing against the decision requirements, then regret; a note if ``robustness.csv`` is unreadable."""
    out = ["<h3>Which policy holds up across the worlds?</h3>"]
    try:
        table = read_table(folder / "robustness.csv", ROBUSTNESS_COLUMNS, ("policy", "measure", "metric", "statistic"))
    except WorldsFileError as exc:
        return out[0] + f"<p class=\"error\">Robustness cannot be shown: {_escape(exc)}.</p>"
    for column in ("policy", "measure", "metric", "statistic"):
        table[column] = table[column].astype(str)
    out.append(satisficing_part(table[table["measure"] == "satisficing"], results))
    out.append(regret_table(table[table["measure"] == "regret"]))
    return "\n".join(part for part in out if part)


def _requirement_texts(results: Results, satisficing: pd.DataFrame) -> list[str]:
    declared = [r.text for r in results.scenario.decision]
    found = [m for m in dict.fromkeys(satisficing["metric"]) if m != ALL_REQUIREMENTS]
    return declared + [m for m in found if m not in declared]


def satisficing_part(satisficing: pd.DataFrame, results: Results) -> str:
    """The requirements listed, then per policy the share of worlds meeting each and all of them."""
    requirements = _requirement_texts(results, satisficing)
    if satisficing.empty or not requirements:
        return ("<p>The scenario has no <code>decision:</code> block, so there is no share of worlds where a policy "
                "is good enough: add requirements such as <code>decision: {requirements: [\"response_rate &gt;= "
                "0.20\"]}</code> and run again.</p>")
    listed = "".join(f"<li><code>{_escape(text)}</code></li>" for text in requirements)
    head = ("<tr><th>policy</th>" + "".join(f"<th>{_escape(text)}</th>" for text in requirements)
            + "<th>all requirements [95% CI]</th></tr>")
    rows, words = [], []
    for policy in dict.fromkeys(satisficing["policy"]):
        mine = satisficing[satisficing["policy"] == policy]
        value = {(m, s): float(v) for m, s, v in zip(mine["metric"], mine["statistic"], mine["value"], strict=True)}
        cells = "".join(f"<td class=\"n\">{_pct(value.get((text, 'share'), math.nan))}</td>" for text in requirements)
        share = value.get((ALL_REQUIREMENTS, "share"), math.nan)
        low = value.get((ALL_REQUIREMENTS, "ci_low"), math.nan)
        high = value.get((ALL_REQUIREMENTS, "ci_high"), math.nan)
        rows.append(f"<tr><td>{_escape(policy)}</td>{cells}<td class=\"n\"><b>{_pct(share)}</b> "
                    f"[{_pct(low)}, {_pct(high)}]</td></tr>")
        words.append(f"<b>{_escape(policy)}</b> {_pct(share)}")
    return (f"<p>The decision requires:</p><ul>{listed}</ul><p>Share of the worlds where a policy meets them all "
            f"(on per-world means): {', '.join(words)}.</p>"
            f"<table>{head}{''.join(rows)}</table><p class=\"note\">[..]: 95% Wilson interval of the share of worlds "
            "where a policy meets every requirement (the worlds are equally likely draws).</p>")


def regret_table(regret: pd.DataFrame) -> str:
    """Per metric and policy: how far it falls short of each world's best policy (mean, 90th percentile, max)."""
    if regret.empty:
        return ""
    rows = []
    for metric in dict.fromkeys(regret["metric"]):
        k = scale_of(metric)
        unit = "points" if metric in RATE_METRICS else METRIC_UNITS.get(metric, "")
        for policy in dict.fromkeys(regret.loc[regret["metric"] == metric, "policy"]):
            part = regret[(regret["metric"] == metric) & (regret["policy"] == policy)]
            value = dict(zip(part["statistic"], part["value"], strict=True))
            cells = "".join(f"<td class=\"n\">{num(_float(value.get(s)) * k)}</td>" for s in ("mean", "q90", "max"))
            rows.append(f"<tr><td title=\"{_escape(metric)}\">{_escape(METRIC_LABELS.get(metric, metric))}</td>"
                        f"<td>{_escape(unit)}</td><td>{_escape(policy)}</td>{cells}</tr>")
    return ("<details open><summary>regret: how far each policy falls short of the best policy of each world"
            "</summary><table><tr><th>metric</th><th>unit</th><th>policy</th><th>mean</th><th>90th percentile</th>"
            f"<th>max</th></tr>{''.join(rows)}</table><p class=\"note\">0 = the best policy in every world; in the "
            "metric's units (rates in points), on the per-world means.</p></details>")


# --------------------------------------------------------------------------- discovery


DISCOVERY_CAPTION = ("PRIM's peeling trajectory: each step's coverage (share of the worlds where the condition "
                     "holds that the box holds) against its density (share of the box's worlds where it holds); the "
                     "reported box is starred.")


def discovery_part(folder: Path, per_world: Any = None) -> str:
    """The box and sentence of ``inmail-sim discover`` (and its trade-off figure); else the command to get them.

    ``per_world``: replications per world (the manifest's): discovery judges each world on their mean.
    """
    target = folder / DISCOVER_DIR
    out = ["<h3>In which worlds does the conclusion flip?</h3>"]
    if not (target / "discovery.json").is_file():
        command = f"inmail-sim discover {shlex.quote(str(folder))} --where \"diff.response_rate < 0\""
        return out[0] + ("<p>Scenario discovery finds the region of assumptions where a condition holds (here: the "
                         f"policy lowers the response rate): <code>{_escape(command)}</code>, then "
                         "<code>inmail-sim report</code> again shows its answer here.</p>")
    try:
        doc = read_json(target / "discovery.json")
    except WorldsFileError as exc:
        return out[0] + f"<p class=\"error\">The scenario discovery cannot be shown: {_escape(exc)}.</p>"
    out.append(f"<p><b>{_escape(doc.get('sentence', ''))}</b></p>")
    n_true, n_worlds = doc.get("n_true"), doc.get("n_worlds")
    if isinstance(n_true, int) and isinstance(n_worlds, int) and n_worlds > 0:
        pooled = (f" (each world judged on the mean of its {per_world} replications)"
                  if isinstance(per_world, int) and per_world > 1 else "")
        out.append(f"<p>The condition <code>{_escape(doc.get('where', ''))}</code> holds in {n_true} of the "
                   f"{n_worlds} worlds ({_pct(n_true / n_worlds)}){pooled}.</p>")
    out.append(box_table(doc.get("box")))
    png = target / "tradeoff.png"
    if png.is_file():
        data = png.read_bytes()
        out.append(embedded_png(data, "coverage against density", DISCOVERY_CAPTION) if data[:8] == PNG_MAGIC
                   else "<p class=\"error\">discover/tradeoff.png is not a PNG image.</p>")
    return "\n".join(part for part in out if part)


def box_table(box: Any) -> str:
    """The reported box: one row per restricted assumption, with its quasi-p; coverage and density under it."""
    if not isinstance(box, dict):
        return ""
    restrictions = [r for r in box.get("restrictions") or [] if isinstance(r, dict)]
    figures = (f"coverage {_pct(_float(box.get('coverage')))} (of the worlds where the condition holds, the share "
               f"inside the box), density {_pct(_float(box.get('density')))} (of the worlds inside the box, the share "
               "where it holds)")
    if not restrictions:
        return f"<p class=\"note\">The box restricts no assumption: {figures}.</p>"
    rows = "".join(f"<tr><td class=\"rule\">{_escape(r.get('dimension', ''))}</td>"
                   f"<td class=\"n\">{_bound(r.get('low'))}</td><td class=\"n\">{_bound(r.get('high'))}</td>"
                   f"<td class=\"n\">{_quasi_p(r.get('quasi_p'))}</td></tr>" for r in restrictions)
    return (f"<table><tr><th>assumption</th><th>from</th><th>to</th><th>quasi-p</th></tr>{rows}</table>"
            f"<p class=\"note\">The box: {figures}. Quasi-p: how likely a restriction this strong is by chance "
            "(one-sided binomial).</p>")


def _bound(value: Any) -> str:
    number = _float(value)
    if not math.isfinite(number):
        return MISSING
    return num(number) if abs(number) >= 1000 else f"{number:.3g}"


def _quasi_p(value: Any) -> str:
    number = _float(value)
    if not math.isfinite(number):
        return MISSING
    return "<0.001" if number < 0.001 else f"{number:.3f}"
