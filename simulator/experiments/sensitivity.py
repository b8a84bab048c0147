"""Global sensitivity: which assumptions drive the answer (Sobol indices and a tornado chart).

Outputs are named ``diff.METRIC`` (the paired difference ``policy - baseline``), ``POLICY.METRIC``
or a bare ``METRIC`` (of the compared policy); the defaults are the response-rate difference and
the compared policy's net credit burn.  Inputs are dotted parameter paths with ranges (the
``sensitivity:`` block, or the ranges of the ``sweep:`` block), sampled uniformly (log-uniformly
with ``log: true``).

* **Sobol indices** - first-order ``S1`` (the share of the output variance explained by the input
  alone) and total ``ST`` (including its interactions), with the Saltelli (2010) estimators of
  :func:`scipy.stats.sobol_indices` on a scrambled Sobol' design A, B, AB.  Cost: ``N (d + 2)``
  evaluations for ``N`` base samples and ``d`` inputs; each evaluation runs every needed policy
  ``replications`` times.  The CIs are BCa bootstrap intervals over the ``N`` rows, as in
  ``SobolResult.bootstrap``, but computed with :func:`scipy.stats.bootstrap` on a generator derived
  from the root seed, so they are reproducible.  (scipy is used rather than SALib: it is already a
  dependency, takes precomputed model outputs, and gives the same Saltelli estimators.)
* **Tornado** - one at a time around the scenario as written: each input at its ``low`` and
  ``high`` with the others untouched (``2 d + 1`` evaluations), sorted by swing.

Evaluations use common random numbers (replication ``i`` of every point uses
``replication_seed(root, i)``), so an output is a deterministic function of the inputs for a given
root seed: the indices describe the sensitivity of the ``replications``-replication mean, and
sampling noise does not masquerade as an input effect.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.runner import TaskStore, open_executor
from simulator.experiments.sweep import (
    PURPOSE_BOOTSTRAP,
    PURPOSE_SENSITIVITY,
    Parameter,
    Point,
    Progress,
    Records,
    _qmc_engine,
    build_points,
    check_points_memory,
    design_rng,
    parse_parameter,
    run_points,
    write_figure_files,
)
from simulator.scenario import Issue, PathT, Scenario, ScenarioError, with_changes

DEFAULT_OUTPUTS: tuple[str, ...] = ("diff.response_rate", "net_credit_burn")


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class Output:
    """An analysed output: ``metric`` of ``policy``, minus the baseline's when ``diff``."""

    name: str
    metric: str
    policy: str
    diff: bool


@dataclass(frozen=True)
class SensitivitySpec:
    """The validated ``sensitivity:`` block (parameters possibly taken from ``sweep:``)."""

    parameters: tuple[Parameter, ...]
    block: str
    outputs: tuple[Output, ...]
    policy: str
    n: int
    replications: int
    bootstrap: int
    confidence: float
    seed: int
    sobol: bool
    tornado: bool

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def evaluations(self) -> int:
        """Scenario evaluations: ``N (d + 2)`` for Sobol plus ``2 d + 1`` for the tornado."""
        d = len(self.parameters)
        return (self.n * (d + 2) if self.sobol else 0) + (2 * d + 1 if self.tornado else 0)


def parse_output(text: str, scenario: Scenario, policy: str) -> Output | str:
    """An :class:`Output` from ``diff.METRIC``, ``POLICY.METRIC`` or ``METRIC``; else an error message."""
    head, _, metric = text.rpartition(".")
    if metric not in METRIC_NAMES:
        return f"unknown metric {metric!r}; allowed: " + ", ".join(METRIC_NAMES)
    if head == "diff":
        return Output(text, metric, policy, True)
    if head == "":
        return Output(text, metric, policy, False)
    if head not in scenario.policies:
        return (f"unknown policy {head!r}; write diff.METRIC (policy - baseline), POLICY.METRIC or METRIC; "
                "policies: " + ", ".join(scenario.policies))
    return Output(text, metric, head, False)


def _sweep_ranges(scenario: Scenario) -> dict[str, Any]:
    """The sweep block's parameters as ranges (a list of numbers becomes [min, max])."""
    out: dict[str, Any] = {}
    for path, entry in ((scenario.resolved.get("sweep") or {}).get("parameters") or {}).items():
        if isinstance(entry, dict):
            out[path] = {k: v for k, v in entry.items() if k != "num"}
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry) and len(set(entry)) > 1:
            out[path] = {"low": min(entry), "high": max(entry),
                         "integer": all(isinstance(v, int) for v in entry)}
    return out


def sensitivity_spec(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                     sobol: bool | None = None, tornado: bool | None = None) -> SensitivitySpec:
    """Read and check the ``sensitivity:`` block; raise :class:`ScenarioError` listing every problem."""
    raw = scenario.resolved.get("sensitivity") or {}
    issues: list[Issue] = []
    block = "sensitivity" if raw.get("parameters") else "sweep"
    entries = raw.get("parameters") or _sweep_ranges(scenario)
    if not entries:
        raise ScenarioError([scenario.issue(("sensitivity",), "no parameters to analyse: give "
                                            "sensitivity.parameters {path: {low, high}} or a sweep block with ranges")])
    params: list[Parameter] = []
    for path, entry in entries.items():
        p, errs = parse_parameter(scenario, block, path, entry)
        issues += errs
        if p is not None:
            params.append(p)
    others = [p for p in scenario.policy_names if p != scenario.baseline]
    policy = raw.get("policy") or (others[0] if others else scenario.baseline)
    if policy not in scenario.policies:
        issues.append(scenario.issue(("sensitivity", "policy"), "must name one of the policies: "
                                     + ", ".join(scenario.policies), policy))
    outputs: list[Output] = []
    for k, text in enumerate(raw.get("outputs") or DEFAULT_OUTPUTS):
        o = parse_output(text, scenario, policy)
        if isinstance(o, str):
            issues.append(scenario.issue(("sensitivity", "outputs", k), o, text))
        elif o.diff and policy == scenario.baseline:
            issues.append(scenario.issue(("sensitivity", "policy"), "a diff.* output needs a policy other than "
                                         f"the baseline {scenario.baseline!r}", policy))
        else:
            outputs.append(o)
    n_ = int(n or raw.get("n", 32))
    if n_ & (n_ - 1):
        where: PathT = ("sensitivity", "n")
        issues.append(scenario.issue(where, "the Sobol' design needs a power of 2 (e.g. 16, 32, 64)", n_))
    if issues:
        raise ScenarioError(issues)
    return SensitivitySpec(
        parameters=tuple(params), block=block, outputs=tuple(outputs), policy=policy, n=n_,
        replications=int(replications or raw.get("replications", 2)), bootstrap=int(raw.get("bootstrap", 999)),
        confidence=float(raw.get("confidence", 0.95)),
        seed=int(raw["seed"]) if raw.get("seed") is not None else scenario.root_seed,
        sobol=bool(raw.get("sobol", True)) if sobol is None else sobol,
        tornado=bool(raw.get("tornado", True)) if tornado is None else tornado,
    )


# --------------------------------------------------------------------------- Sobol indices (generic)


def saltelli_design(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit matrices A and B, each ``(n, d)``: the two halves of a scrambled 2d-dim Sobol' sample
    (as :func:`scipy.stats.sobol_indices` draws them)."""
    ab = _qmc_engine(qmc.Sobol, 2 * d, rng, scramble=True, bits=64).random(n)
    return ab[:, :d], ab[:, d:]


def ab_matrices(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``AB[i]`` = A with column ``i`` taken from B; shape ``(d, n, d)``."""
    d = A.shape[1]
    AB = np.repeat(A[None, :, :], d, axis=0)
    for i in range(d):
        AB[i, :, i] = B[:, i]
    return AB


def saltelli_2010(f_A: np.ndarray, f_B: np.ndarray, f_AB: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-order and total indices, shapes ``(s, d)`` (Saltelli et al. 2010, Table 2 b and f; the
    estimator of scipy's ``sobol_indices``).  ``f_A``, ``f_B``: ``(s, n)``; ``f_AB``: ``(d, s, n)``."""
    var = np.var([f_A, f_B], axis=(0, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 = np.mean(f_B * (f_AB - f_A), axis=-1) / var
        st = 0.5 * np.mean((f_A - f_AB) ** 2, axis=-1) / var
    return s1.T, st.T


def _bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_resamples: int, confidence: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """BCa bootstrap interval of a row-resampled statistic (percentile if BCa is degenerate)."""
    def run(method: str) -> Any:
        kw = {"n_resamples": n_resamples, "confidence_level": confidence, "method": method, "vectorized": False}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return stats.bootstrap((np.arange(n),), statistic, rng=rng, **kw)
            except TypeError:  # scipy < 1.15
                return stats.bootstrap((np.arange(n),), statistic, random_state=rng, **kw)

    res = run("BCa")
    lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        res = run("percentile")
        lo, hi = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    return lo, hi


def sobol_table(f_A: np.ndarray, f_B: np.ndarray, f_AB: np.ndarray, parameters: Sequence[str],
                outputs: Sequence[str], *, n_resamples: int = 999, confidence: float = 0.95,
                rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Sobol indices with bootstrap CIs as a tidy table.

    ``f_A``, ``f_B``: ``(s, n)`` outputs at the rows of A and B; ``f_AB``: ``(d, s, n)``.  Point
    estimates come from :func:`scipy.stats.sobol_indices`; the CIs resample the ``n`` rows
    (``n_resamples`` = 0: no CIs).  An output that does not vary gets indices 0.
    """
    f_A, f_B = np.atleast_2d(f_A).astype(np.float64), np.atleast_2d(f_B).astype(np.float64)
    f_AB = np.asarray(f_AB, dtype=np.float64).reshape(len(parameters), f_A.shape[0], f_A.shape[1])
    s, n = f_A.shape
    res = stats.sobol_indices(func={"f_A": f_A, "f_B": f_B, "f_AB": f_AB}, n=n, method=saltelli_2010)
    s1 = np.asarray(res.first_order).reshape(s, -1)
    st = np.asarray(res.total_order).reshape(s, -1)
    lo = np.full((2, s, len(parameters)), np.nan)
    hi = np.full((2, s, len(parameters)), np.nan)
    if n_resamples > 0:
        mean = np.mean([f_A, f_B], axis=(0, -1)).reshape(-1, 1)
        a, b, ab = f_A - mean, f_B - mean, f_AB - mean

        def statistic(idx: np.ndarray) -> np.ndarray:
            x1, xt = saltelli_2010(a[:, idx], b[:, idx], ab[..., idx])
            return np.nan_to_num(np.stack([x1, xt]), nan=0.0, posinf=0.0, neginf=0.0)

        varies = np.var([f_A, f_B], axis=(0, -1)) > 0
        if varies.any():
            lo, hi = _bootstrap(statistic, n, n_resamples, confidence, rng or np.random.default_rng(0))
        lo[:, ~varies], hi[:, ~varies] = 0.0, 0.0
    rows = []
    for k, out in enumerate(outputs):
        for j, par in enumerate(parameters):
            rows.append({"output": out, "parameter": par, "S1": s1[k, j], "S1_ci_low": lo[0, k, j],
                         "S1_ci_high": hi[0, k, j], "ST": st[k, j], "ST_ci_low": lo[1, k, j],
                         "ST_ci_high": hi[1, k, j], "n": n})
    return pd.DataFrame(rows)


def sobol_analyse(func: Callable[[np.ndarray], np.ndarray], parameters: Sequence[Parameter], n: int, *,
                  seed: int, outputs: Sequence[str] | None = None, n_resamples: int = 999,
                  confidence: float = 0.95) -> pd.DataFrame:
    """Sobol indices of a vectorized ``func`` (``(m, d)`` input values -> ``(m,)`` or ``(m, s)``).

    The same design, estimator and bootstrap as the simulator's analysis (used to check them on
    test functions with known indices).  Integer parameters are rounded.
    """
    A_u, B_u = saltelli_design(len(parameters), n, design_rng(seed, PURPOSE_SENSITIVITY))
    AB_u = ab_matrices(A_u, B_u)
    d = len(parameters)

    def values(u: np.ndarray) -> np.ndarray:
        return np.column_stack([np.asarray(p.scale(u[:, j]), dtype=np.float64) for j, p in enumerate(parameters)])

    def f(u: np.ndarray) -> np.ndarray:
        y = np.asarray(func(values(u)), dtype=np.float64)
        return (y[:, None] if y.ndim == 1 else y).T  # (s, m)

    f_A, f_B = f(A_u), f(B_u)
    f_AB = np.stack([f(AB_u[i]) for i in range(d)])
    names = list(outputs) if outputs is not None else [f"y{k}" for k in range(f_A.shape[0])]
    return sobol_table(f_A, f_B, f_AB, [p.path for p in parameters], names, n_resamples=n_resamples,
                       confidence=confidence, rng=design_rng(seed, PURPOSE_BOOTSTRAP))


# --------------------------------------------------------------------------- tornado (generic)


def tornado_points(parameters: Sequence[Parameter]) -> list[dict[str, Any]]:
    """The one-at-a-time design: the base point (no change), then each input at low and at high."""
    pts: list[dict[str, Any]] = [{}]
    for p in parameters:
        lo, hi = p.scale(np.array([0.0, 1.0]))
        pts += [{p.path: lo}, {p.path: hi}]
    return pts


def tornado_table(values: np.ndarray, parameters: Sequence[Parameter], outputs: Sequence[str],
                  base_values: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Effect of each input's low and high value on each output, largest first.

    ``effect_low`` / ``effect_high``: output change from the base point (``*_hw``: 95% t
    half-widths); ``swing`` = output at high - output at low; ``span``: the width of the tornado
    bar (``max(effects, 0) - min(effects, 0)``), the sort key.

    ``values``: ``(2 d + 1, s, r)`` outputs over :func:`tornado_points` and ``r`` replications
    (common random numbers: paired against the base point; ``r`` = 1 gives no CIs).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 2:
        v = v[..., None]
    base = v[0]
    r = v.shape[-1]
    q = stats.t.ppf(0.975, r - 1) if r > 1 else np.nan

    def hw(x: np.ndarray) -> float:
        """95% t half-width of a mean over replications (NaN for one replication)."""
        return float(q * np.std(x, ddof=1) / np.sqrt(r)) if r > 1 else np.nan

    rows = []
    for j, p in enumerate(parameters):
        lo_v, hi_v = v[1 + 2 * j], v[2 + 2 * j]
        for k, out in enumerate(outputs):
            d_lo, d_hi = lo_v[k] - base[k], hi_v[k] - base[k]
            swing = hi_v[k] - lo_v[k]
            low_x, high_x = p.scale(np.array([0.0, 1.0]))
            rows.append({
                "output": out, "parameter": p.path,
                "base_value": (base_values or {}).get(p.path), "low": low_x, "high": high_x,
                "output_base": base[k].mean(), "output_low": lo_v[k].mean(), "output_high": hi_v[k].mean(),
                "effect_low": d_lo.mean(), "effect_low_hw": hw(d_lo), "effect_high": d_hi.mean(),
                "effect_high_hw": hw(d_hi), "swing": swing.mean(), "swing_hw": hw(swing),
                "span": max(d_lo.mean(), d_hi.mean(), 0.0) - min(d_lo.mean(), d_hi.mean(), 0.0),
            })
    out_frame = pd.DataFrame(rows)
    if out_frame.empty:
        return out_frame
    order = {o: i for i, o in enumerate(outputs)}
    out_frame["_o"] = out_frame["output"].map(order)
    out_frame = out_frame.sort_values(["_o", "span"], ascending=[True, False], kind="stable")
    return out_frame.drop(columns=["_o"]).reset_index(drop=True)


def tornado_analyse(func: Callable[[np.ndarray], np.ndarray], parameters: Sequence[Parameter],
                    base: Sequence[float], outputs: Sequence[str] | None = None) -> pd.DataFrame:
    """Tornado of a deterministic ``func`` (``(m, d)`` -> ``(m,)`` or ``(m, s)``) around ``base``."""
    pts = tornado_points(parameters)
    X = np.tile(np.asarray(base, dtype=np.float64), (len(pts), 1))
    for k, pt in enumerate(pts):
        for j, p in enumerate(parameters):
            if p.path in pt:
                X[k, j] = pt[p.path]
    y = np.asarray(func(X), dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    names = list(outputs) if outputs is not None else [f"y{k}" for k in range(y.shape[1])]
    return tornado_table(y[..., None], parameters, names, dict(zip([p.path for p in parameters], base,
                                                                   strict=True)))


# --------------------------------------------------------------------------- the simulator


def current_value(scenario: Scenario, path: str) -> Any:
    """The value the scenario uses at ``path`` (as written in the file, else the default), or None."""
    cur: Any = scenario.resolved
    for seg in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(seg)
        elif isinstance(cur, list):
            named = [x for x in cur if isinstance(x, dict) and x.get("name") == seg]
            index = int(seg) if seg.lstrip("-").isdigit() and -len(cur) <= int(seg) < len(cur) else None
            cur = named[0] if named else (cur[index] if index is not None else None)
        else:
            cur = None
        if cur is None:
            return _config_value(scenario, path)
    return cur


def _config_value(scenario: Scenario, path: str) -> Any:
    """The value at ``path`` in the built config objects (defaults included), or None."""
    segs = path.split(".")
    cur: Any
    if segs[0] == "market":
        cur, rest = scenario.market, segs[1:]
    elif segs[0] == "policies" and len(segs) > 2 and segs[1] in scenario.policies:
        pol = scenario.policies[segs[1]]
        cur, rest = (pol.phase, segs[2:]) if segs[2] in ("refund", "allotments", "accrual", "pooling") \
            else (pol, segs[2:])
    elif segs[0] == "horizon_days":
        return scenario.run.horizon_days
    else:
        return None
    for seg in rest:
        if isinstance(cur, tuple):
            cur = next((x for x in cur if getattr(x, "name", None) == seg), None)
        else:
            cur = getattr(cur, seg, None)
        if cur is None:
            return None
    return cur if isinstance(cur, (int, float, str, bool)) else str(cur)


@dataclass
class SensitivityResults:
    """Sobol indices, the tornado and every evaluation behind them."""

    scenario: Scenario
    spec: SensitivitySpec
    samples: pd.DataFrame
    indices: pd.DataFrame
    tornado: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def output_names(self) -> list[str]:
        return [o.name for o in self.spec.outputs]

    def text(self) -> str:
        """A short printout: indices and swings, largest first."""
        sp = self.spec
        lines = [f"sensitivity of {self.scenario.name}: {len(sp.parameters)} inputs, {sp.evaluations} evaluations "
                 f"x {sp.replications} replications; policy {sp.policy} vs {self.scenario.baseline}"]
        for out in self.output_names:
            lines.append(f"\n{out}")
            if not self.indices.empty:
                ind = self.indices[self.indices["output"] == out].sort_values("ST", ascending=False)
                lines.append(f"  {'input':<44} {'S1 [95% CI]':>24} {'ST [95% CI]':>24}")
                for r in ind.to_dict("records"):
                    lines.append(f"  {_cut(r['parameter'], 44):<44} {_ci(r['S1'], r['S1_ci_low'], r['S1_ci_high']):>24}"
                                 f" {_ci(r['ST'], r['ST_ci_low'], r['ST_ci_high']):>24}")
            if not self.tornado.empty:
                tor = self.tornado[self.tornado["output"] == out]
                lines.append(f"  tornado (base {tor['output_base'].iloc[0]:.4g}): swing low -> high")
                for r in tor.to_dict("records"):
                    lines.append(f"  {_cut(r['parameter'], 44):<44} {_short(r['low'])} -> {_short(r['high'])}: "
                                 f"{r['swing']:+.4g}")
        return "\n".join(lines)

    def write(self, out: str | Path, **manifest_kw: Any) -> Path:
        """``sensitivity.csv`` (indices), ``tornado.csv``, ``sensitivity_samples.csv``, figures, manifest."""
        import json

        from simulator.io import plotting
        from simulator.io.outputs import atomic_write

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        files = {"sensitivity.csv": self.indices, "tornado.csv": self.tornado,
                 "sensitivity_samples.csv": self.samples}
        for name, frame in files.items():
            atomic_write(folder / name, lambda p, f=frame: f.to_csv(p, index=False))
        makers: dict[str, Callable[[], Any]] = {}
        for k, out_name in enumerate(self.output_names):
            if not self.indices.empty:
                makers[f"sobol_{k}_{_slug(out_name)}"] = partial(plotting.plot_sobol, self.indices, out_name)
            if not self.tornado.empty:
                makers[f"tornado_{k}_{_slug(out_name)}"] = partial(plotting.plot_tornado, self.tornado, out_name)
        figures = write_figure_files(makers, folder, self.extra)
        names = [*files, *figures, "manifest.json"]
        man = _manifest(self, names, manifest_kw) | {"figure_errors": self.extra.get("figure_errors", {})}
        atomic_write(folder / "manifest.json",
                     lambda p: p.write_text(json.dumps(man, indent=2, default=str) + "\n", encoding="utf-8"))
        return folder


def _manifest(res: SensitivityResults, files: Sequence[str], kw: Mapping[str, Any]) -> dict[str, Any]:
    from simulator.io.outputs import git_revision, package_version, run_fingerprint

    sc, sp = res.scenario, res.spec
    git = git_revision()
    started, finished = kw.get("started"), kw.get("finished")
    return {
        "package": "inmail-sim", "version": package_version(), "git_revision": git["revision"],
        "git_dirty": git["dirty"], "kind": "sensitivity", "fingerprint": run_fingerprint(sc),
        "scenario": sc.name, "scenario_file": sc.source,
        "overrides": list(sc.overrides), "baseline": sc.baseline, "policy": sp.policy,
        "root_seed": sc.root_seed, "design_seed": sp.seed, "parameters": sp.paths,
        "outputs": [o.name for o in sp.outputs], "n": sp.n, "replications": sp.replications,
        "evaluations": sp.evaluations, "model_runs": len(res.samples) * sp.replications * _n_policies(sp, sc),
        "bootstrap_resamples": sp.bootstrap, "confidence": sp.confidence,
        "method": "Sobol: Saltelli 2010 estimators (scipy.stats.sobol_indices), BCa bootstrap over the N rows; "
                  "tornado: one at a time around the scenario's values",
        "seeding": "replication i of every evaluation uses SeedSequence(root_seed, spawn_key=(i,))",
        "workers": kw.get("workers"), "executor": kw.get("executor"), "command": " ".join(kw.get("argv") or []) or None,
        "started": started.isoformat(timespec="seconds") if started else None,
        "finished": finished.isoformat(timespec="seconds") if finished else None,
        "files": list(files),
    }


def _n_policies(spec: SensitivitySpec, scenario: Scenario) -> int:
    return len(needed_policies(spec, scenario))


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in text)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _ci(v: float, lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def needed_policies(spec: SensitivitySpec, scenario: Scenario) -> list[str]:
    """The policies the outputs need (the baseline for differences), baseline first."""
    want = {o.policy for o in spec.outputs} | ({scenario.baseline} if any(o.diff for o in spec.outputs) else set())
    return [p for p in scenario.policy_names if p in want]


def _output_values(records: Records, point: int, spec: SensitivitySpec, baseline: str) -> np.ndarray:
    """``(s, r)``: each output in each replication at one point."""
    out = np.empty((len(spec.outputs), spec.replications))
    for k, o in enumerate(spec.outputs):
        for i in range(spec.replications):
            v = records[(point, o.policy, i)][o.metric]
            out[k, i] = v - records[(point, baseline, i)][o.metric] if o.diff else v
    return out


def evaluation_design(spec: SensitivitySpec) -> tuple[list[tuple[str, int]], list[dict[str, Any]]]:
    """Every evaluation: its (design, row) label - ``A``, ``B``, ``AB<i>`` (Sobol), ``tornado`` - and values."""
    d = len(spec.parameters)
    labels: list[tuple[str, int]] = []
    values: list[dict[str, Any]] = []
    if spec.sobol:
        A_u, B_u = saltelli_design(d, spec.n, design_rng(spec.seed, PURPOSE_SENSITIVITY))
        AB_u = ab_matrices(A_u, B_u)
        for label, mat in [("A", A_u), ("B", B_u)] + [(f"AB{i}", AB_u[i]) for i in range(d)]:
            cols = [p.scale(mat[:, j]) for j, p in enumerate(spec.parameters)]
            for row, vals in enumerate(zip(*cols, strict=True)):
                labels.append((label, row))
                values.append(dict(zip(spec.paths, vals, strict=True)))
    if spec.tornado:
        for row, pt in enumerate(tornado_points(spec.parameters)):
            labels.append(("tornado", row))
            values.append(pt)
    return labels, values


SensitivityPlan = tuple[SensitivitySpec, list[tuple[str, int]], list[Point]]
"""The checked spec, each evaluation's (design, row) label, and the evaluations as sweep points."""


def plan_sensitivity(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                     sobol: bool | None = None, tornado: bool | None = None) -> SensitivityPlan:
    """Check the spec and build (and validate) every evaluation; raises :class:`ScenarioError`."""
    spec = sensitivity_spec(scenario, n=n, replications=replications, sobol=sobol, tornado=tornado)
    labels, values = evaluation_design(spec)
    return spec, labels, build_points(scenario, values, block=spec.block)


def check_sensitivity(scenario: Scenario) -> SensitivitySpec:
    """Everything ``inmail-sim validate`` checks of a sensitivity analysis: the spec and every evaluation."""
    return plan_sensitivity(scenario)[0]


def run_sensitivity(scenario: Scenario, *, n: int | None = None, replications: int | None = None,
                    sobol: bool | None = None, tornado: bool | None = None, executor: Executor | None = None,
                    workers: int | None = None, dask: str | None = None, progress: Progress | None = None,
                    store: TaskStore | None = None, memory_limit: int | None = None,
                    plan: SensitivityPlan | None = None) -> SensitivityResults:
    """Sobol indices and the tornado of the scenario's outputs over its parameter ranges.

    Every evaluation (Sobol rows and tornado points) runs in one batch on the executor, with the
    same options as :func:`simulator.experiments.sweep.run_sweep` (``store``: one file per finished task,
    reused when present).  ``plan``: :func:`plan_sensitivity`'s result, if already made.
    """
    if plan is None:
        plan = plan_sensitivity(scenario, n=n, replications=replications, sobol=sobol, tornado=tornado)
    spec, design_rows, points = plan
    d = len(spec.parameters)
    policies = needed_policies(spec, scenario)
    if dask is None or dask == "local":
        check_points_memory(points, executor, workers, memory_limit)
    opener = open_executor(workers or 1, dask) if executor is None else contextlib.nullcontext(executor)
    with opener as ex:
        records = run_points(points, spec.replications, ex, progress=progress, store=store, policies=policies)
    y = np.stack([_output_values(records, pt.id, spec, scenario.baseline) for pt in points])  # (m, s, r)
    names = [o.name for o in spec.outputs]
    samples = _samples_frame(points, design_rows, spec, y)
    indices = pd.DataFrame()
    tor = pd.DataFrame()
    labels = [lab for lab, _ in design_rows]
    if spec.sobol:
        mean = y.mean(axis=-1)  # (m, s)
        pick = {lab: mean[[k for k, x in enumerate(labels) if x == lab]].T for lab in dict.fromkeys(labels)}
        f_AB = np.stack([pick[f"AB{i}"] for i in range(d)])
        indices = sobol_table(pick["A"], pick["B"], f_AB, spec.paths, names, n_resamples=spec.bootstrap,
                              confidence=spec.confidence, rng=design_rng(spec.seed, PURPOSE_BOOTSTRAP))
    if spec.tornado:
        rows = [k for k, x in enumerate(labels) if x == "tornado"]
        base = {p: current_value(scenario, p) for p in spec.paths}
        tor = tornado_table(y[rows], spec.parameters, names, base)
    return SensitivityResults(scenario=with_changes(scenario), spec=spec, samples=samples, indices=indices,
                              tornado=tor)


def _samples_frame(points: Sequence[Point], rows: Sequence[tuple[str, int]], spec: SensitivitySpec,
                   y: np.ndarray) -> pd.DataFrame:
    recs = []
    for pt, (label, row), vals in zip(points, rows, y, strict=True):
        rec: dict[str, Any] = {"evaluation": pt.id, "design": label, "row": row}
        rec |= {p: pt.values.get(p) for p in spec.paths}
        rec |= {o.name: float(vals[k].mean()) for k, o in enumerate(spec.outputs)}
        recs.append(rec)
    return pd.DataFrame(recs)
