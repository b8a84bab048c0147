"""Why does the new policy move response rates?  Shapley decomposition over counterfactual worlds.

Two decompositions of the same baseline -> new difference, each summing to it exactly:

**By rule** - which rule change is responsible.  The players are the rules in which the two
policies differ (:data:`RULES`: refund rule, allotments and one-off grants, accrual, pooling,
threshold, switch date).  The world of a coalition ``T`` is the baseline policy with the rules in
``T`` taken from the new policy (a hybrid policy), on the scenario's market:
``v(T) = Y(baseline + T) - Y(baseline)``, so ``v(all) = Y(new) - Y(baseline)``.

**By channel** - through which behaviour the difference comes about.  The players are the
market-side mechanisms (:data:`CHANNELS`, :mod:`simulator.experiments.channels`), each switched off
*in both worlds*: ``credit_limit`` (who sends), ``adaptation`` (how they send), ``sanction_pressure``
(the pressure of warnings and Improvement Periods, split out of adaptation), ``anticipation`` (of the
published threshold), ``platform_targeting``, ``fatigue`` and ``threshold`` (when both policies have
the same one; otherwise it is a rule).  A channel is available only when it is on in the scenario.

With ``U`` the channels switched on, ``D(U) = Y(new, U) - Y(baseline, U)`` is the policy
difference in that world and ``v(U) = D(U) - D(none)``.  The difference with every channel off,
``D(none)``, is reported as ``direct`` (mechanical: for the response rate it is exactly 0, since
nothing then changes what is sent; for net credit burn it is the refund rule's accounting).
So ``direct + sum of channel contributions = D(all) = Y(new) - Y(baseline)``.

Exact Shapley values over the ``2^k`` coalitions.  The design runs ``2^r`` rule worlds and
``2 * 2^k`` channel worlds (two shared): ``2^r + 2^(k+1) - 2`` worlds per replication, so each
channel doubles the cost (:func:`world_count`).  Every world's
replication ``i`` uses the same seed (common random numbers); the Shapley values are computed
replication by replication - they are linear in the outcomes - and their 95% t-intervals are
the CIs, so the contributions add up to the total difference exactly in every replication.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.core.config import Market, Phase, Policy
from simulator.core.metrics import BREAKDOWN_KEYS, CURRENT_METRICS, METRIC_NAMES, canonical_metric
from simulator.experiments.budget import BYTES_PER_OBSERVATION, Limits, Workload, admit
from simulator.experiments.channels import (
    CHANNEL_LABELS,
    CHANNELS,
    UNLIMITED_CREDITS,
    available_channels,
    channel_label,
    default_channels,
    switch_off,
)
from simulator.experiments.observation import SEAT_SHARES, SEGMENT_KEY, Observation, observe_task, observe_tasks
from simulator.experiments.runner import Progress, Task, TaskKey, TaskStore, failure_report, open_executor, run_tasks
from simulator.experiments.statistics import t_interval
from simulator.scenario import Scenario

RULES: tuple[str, ...] = ("refund", "allotments", "accrual", "pooling", "threshold", "switch")
"""Policy rules a hybrid policy takes from the baseline or the new policy (those that differ are players)."""

LABELS: dict[str, str] = {
    "refund": "refund rule",
    "allotments": "allotments and grants",
    "accrual": "accrual / expiry",
    "pooling": "team pooling",
    "switch": "switch date",
    **CHANNEL_LABELS,
    "direct": "direct (all channels off)",
    "total": "total difference",
}

DEFAULT_METRICS: tuple[str, ...] = ("response_rate", "net_credit_burn")


class ExplainInputError(ValueError):
    """A policy, channel or metric that this scenario cannot explain (the CLI exits with code 2)."""


_PHASE_RULES: dict[str, str] = {"refund": "refund", "allotments": "allotments", "accrual": "accrual",
                                "pooling": "pooling"}


# --------------------------------------------------------------------------- counterfactual worlds


def _phases(policy: Policy) -> tuple[Phase, Phase]:
    """(phase before the switch, phase after it); without a switch both are the one phase."""
    return (policy.before if policy.before is not None else policy.phase), policy.phase


def _mix(base: Phase, new: Phase, rules: Iterable[str]) -> Phase:
    return dataclasses.replace(base, **{_PHASE_RULES[r]: getattr(new, _PHASE_RULES[r])
                                        for r in rules if r in _PHASE_RULES})


def hybrid_policy(base: Policy, new: Policy, rules: Iterable[str]) -> Policy:
    """The baseline policy with ``rules`` taken from the new one (in both phases of a switch)."""
    rules = set(rules)
    unknown = rules - set(RULES)
    if unknown:
        raise ValueError(f"unknown rule(s) {sorted(unknown)}; allowed: {', '.join(RULES)}")
    (bb, ba), (nb, na) = _phases(base), _phases(new)
    switch = new.switch_date if "switch" in rules else base.switch_date
    before = _mix(bb, nb, rules) if switch is not None else None
    name = "+".join([base.name, *[r for r in RULES if r in rules]])
    return dataclasses.replace(
        base, name=name, phase=_mix(ba, na, rules), before=before, switch_date=switch,
        threshold=new.threshold if "threshold" in rules else base.threshold,
        grants=new.grants if "allotments" in rules else base.grants,
        description=f"{base.name} with {', '.join(r for r in RULES if r in rules) or 'no rule'} from {new.name}")


def rule_content(policy: Policy) -> tuple[Any, ...]:
    """What a policy does (not its name, description or sources)."""
    return (policy.phase, policy.before if policy.switch_date is not None else None, policy.switch_date,
            policy.threshold, policy.grants)


def differing_rules(base: Policy, new: Policy) -> list[str]:
    """The rules in which the two policies differ (the players of the rule decomposition)."""
    return [r for r in RULES if rule_content(hybrid_policy(base, new, [r])) != rule_content(base)]


@dataclass(frozen=True)
class World:
    """One counterfactual: the rules taken from the new policy and the channels left on."""

    rules: frozenset[str]
    channels_on: frozenset[str]
    market: Market
    policy: Policy
    id: str

    def describe(self, all_channels: Sequence[str]) -> str:
        off = [c for c in all_channels if c not in self.channels_on]
        rules = "+".join(r for r in RULES if r in self.rules) or "none"
        return f"rules from new: {rules}; off: {', '.join(off) or 'none'}"


@dataclass(frozen=True)
class ExplainPlan:
    """The players of both decompositions and every world needed."""

    baseline: str
    policy: str
    rules: tuple[str, ...]
    channels: tuple[str, ...]
    worlds: dict[tuple[frozenset[str], frozenset[str]], World]

    def world(self, rules: Iterable[str], channels_on: Iterable[str]) -> World:
        return self.worlds[(frozenset(rules), frozenset(channels_on))]


def _fingerprint(market: Market, policy: Policy, scenario: Scenario) -> str:
    """A digest of what determines a world's numbers (so a stored result is reused only if unchanged)."""
    text = repr((market, rule_content(policy), scenario.run, scenario.root_seed))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _subsets(items: Sequence[str]) -> list[frozenset[str]]:
    """All subsets, indexed by bitmask (bit j = items[j])."""
    return [frozenset(x for j, x in enumerate(items) if mask >> j & 1) for mask in range(1 << len(items))]


SWITCH_ON: dict[str, str] = {
    "anticipation": "market.sending.anticipation.enabled=true",
    "platform_targeting": "market.platform_targeting.enabled=true",
    "fatigue": "market.fatigue.enabled=true",
}
"""The ``--set`` that turns a channel on, for the message refusing a channel that is off."""


def _chosen(channels: Sequence[str], available: Sequence[str]) -> list[str]:
    """The asked-for channels, in the order of :data:`CHANNELS`; an unknown or unavailable one is refused."""
    bad = [c for c in channels if c not in available]
    if bad:
        why = []
        for c in bad:
            if c not in CHANNELS:
                why.append(f"{c!r} is not a channel (channels: {', '.join(CHANNELS)})")
            elif c in SWITCH_ON:
                why.append(f"{c} is off in this scenario (switch it on with --set {SWITCH_ON[c]})")
            else:
                why.append(f"{c} cannot be switched here")
        raise ExplainInputError(f"{'; '.join(why)}; available: {', '.join(available) or 'none'}")
    return [c for c in CHANNELS if c in set(channels)]


def world_count(rules: int, channels: int) -> int:
    """Counterfactual worlds of a design with ``rules`` rule players and ``channels`` channels."""
    return (1 << rules) + (2 << channels) - 2 if rules else 1 << channels


def plan(scenario: Scenario, policy: str | None = None, channels: Sequence[str] | None = None) -> ExplainPlan:
    """The counterfactual design for ``policy`` (default: the first non-baseline one) vs the baseline."""
    names = [p for p in scenario.policy_names if p != scenario.baseline]
    if policy is None:
        if not names:
            raise ExplainInputError("the scenario has only one policy; explain needs a baseline and another policy")
        policy = names[0]
    if policy not in scenario.policies or policy == scenario.baseline:
        raise ExplainInputError(f"policy must be one of the non-baseline policies: {', '.join(names)}; got {policy!r}")
    base, new = scenario.policies[scenario.baseline], scenario.policies[policy]
    rules = differing_rules(base, new)
    if rule_content(hybrid_policy(base, new, rules)) != rule_content(new):  # pragma: no cover - a design bug
        raise ValueError(f"{policy} cannot be rebuilt from {scenario.baseline} rule by rule")
    avail = available_channels(scenario.market, base, new, rules)
    chans = default_channels(avail) if channels is None else _chosen(channels, avail)
    worlds: dict[tuple[frozenset[str], frozenset[str]], World] = {}
    all_on = frozenset(chans)

    def add(t: frozenset[str], u: frozenset[str]) -> None:
        if (t, u) in worlds:
            return
        market, pol = switch_off(scenario.market, hybrid_policy(base, new, t), all_on - u, players=all_on)
        tag = "".join("1" if r in t else "0" for r in rules) or "-"
        ctag = "".join("1" if c in u else "0" for c in chans) or "-"
        wid = f"w{tag}-{ctag}-{_fingerprint(market, pol, scenario)}"
        worlds[(t, u)] = World(t, u, market, dataclasses.replace(pol, name=wid), wid)

    for t in _subsets(rules):
        add(t, all_on)
    for u in _subsets(chans):
        add(frozenset(), u)
        add(frozenset(rules), u)
    return ExplainPlan(scenario.baseline, policy, tuple(rules), tuple(chans), worlds)


# --------------------------------------------------------------------------- Shapley values


def shapley(values: np.ndarray) -> np.ndarray:
    """Exact Shapley values of the game ``v(S) = values[mask(S)]`` (bit j of the mask = player j).

    ``values`` has shape ``(2**n, ...)``; the result ``(n, ...)`` - trailing axes (e.g.
    replications) are carried along, as the Shapley value is linear in ``v``.  The values sum to
    ``v(all) - v(empty)`` (efficiency).
    """
    v = np.asarray(values, dtype=np.float64)
    size = v.shape[0]
    n = size.bit_length() - 1
    if size != 1 << n:
        raise ValueError(f"values needs 2**n rows (one per coalition), got {size}")
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    out = np.zeros((n, *v.shape[1:]), dtype=np.float64)
    for j in range(n):
        bit = 1 << j
        for mask in range(size):
            if not mask & bit:
                out[j] += weights[bin(mask).count("1")] * (v[mask | bit] - v[mask])
    return out


# --------------------------------------------------------------------------- running


class ExplainRunError(RuntimeError):
    """Replications of some worlds failed (the finished ones are kept in the store)."""


def run_worlds(scenario: Scenario, design: ExplainPlan, indices: Sequence[int], executor: Executor, *,
               store: TaskStore | None = None, progress: Progress | None = None) -> dict[tuple[str, int], Observation]:
    """Every world x replication on ``executor`` (replication ``i`` of every world has the same seed)."""
    tasks = [Task(TaskKey(w.id, i), observe_task, (w.market, w.policy, scenario.run, scenario.root_seed, i),
                  observe_tasks)
             for i in indices for w in design.worlds.values()]
    total = len(tasks)
    done = 0

    def tick(_key: TaskKey) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    run = run_tasks(tasks, executor, store, on_done=tick)
    if run.failures:
        raise ExplainRunError(f"{len(run.failures)} of {total} world replications failed "
                              f"({run.finished} finished):\n{failure_report(run.failures)}")
    return {(k.policy, k.replication): r for k, r in run.results.items()}


@dataclass
class ExplainResult:
    """The decompositions: ``table`` (one row per metric x decomposition x mechanism) and the data behind it."""

    scenario: Scenario
    plan: ExplainPlan
    metrics: tuple[str, ...]
    indices: tuple[int, ...]
    table: pd.DataFrame
    contributions: pd.DataFrame
    worlds: pd.DataFrame

    def decomposition(self, metric: str, kind: str) -> pd.DataFrame:
        """Rows of one decomposition (``rule`` or ``channel``) of one metric, total included."""
        t = self.table
        return t[(t["metric"] == metric) & (t["decomposition"] == kind)].reset_index(drop=True)


def _values(design: ExplainPlan, obs: Mapping[tuple[str, int], Observation], metric: str,
            indices: Sequence[int]) -> dict[tuple[frozenset[str], frozenset[str]], np.ndarray]:
    return {key: np.array([obs[(w.id, i)].values[metric] for i in indices], dtype=np.float64)
            for key, w in design.worlds.items()}


def decompose(design: ExplainPlan, obs: Mapping[tuple[str, int], Observation], metric: str,
              indices: Sequence[int]) -> dict[str, dict[str, np.ndarray]]:
    """Per-replication contributions: ``{"rule": {player: values}, "channel": {...}}``, totals included.

    ``rule`` holds the rule players and ``total``; ``channel`` the channels, ``direct`` and ``total``.
    """
    y = _values(design, obs, metric, indices)
    rules, chans = design.rules, design.channels
    on = frozenset(chans)
    base_full, new_full = y[(frozenset(), on)], y[(frozenset(rules), on)]
    total = new_full - base_full
    v_rule = np.stack([y[(t, on)] - base_full for t in _subsets(rules)])
    phi_rule = shapley(v_rule)
    diff = {u: y[(frozenset(rules), u)] - y[(frozenset(), u)] for u in _subsets(chans)}
    direct = diff[frozenset()]
    v_chan = np.stack([diff[u] - direct for u in _subsets(chans)])
    phi_chan = shapley(v_chan)
    return {
        "rule": {**{r: phi_rule[j] for j, r in enumerate(rules)}, "total": total},
        "channel": {"direct": direct, **{c: phi_chan[j] for j, c in enumerate(chans)}, "total": total},
    }


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """Metrics an explanation can decompose: any of METRIC_NAMES, the threshold shares, or ``by:label:metric``.

    Returns them with deprecated names replaced by the current ones (with a DeprecationWarning).
    """
    if not metrics:
        raise ExplainInputError("give at least one metric")
    metrics = [canonical_metric(m) for m in metrics]
    for m in metrics:
        if m in METRIC_NAMES or m in SEAT_SHARES:
            continue
        by, _, rest = m.partition(":")
        if by in (*BREAKDOWN_KEYS, SEGMENT_KEY) and ":" in rest:
            continue
        raise ExplainInputError(f"unknown metric {m!r}; allowed: {', '.join(CURRENT_METRICS)}, "
                                f"{', '.join(SEAT_SHARES)}, or BY:LABEL:METRIC (e.g. group:bulk_heavy:sent)")
    return metrics


def _label(design: ExplainPlan, name: str) -> str:
    """A table row's label: channels by :func:`channel_label`; ``direct`` names the threshold's bulk cut."""
    if name in CHANNELS:
        return channel_label(name, design.channels)
    if name == "direct" and "threshold" in design.rules:
        return "direct: IPs cut bulk (channels off)"
    return LABELS.get(name, name)


def explain_workload(scenario: Scenario, design: ExplainPlan, replications: int) -> Workload:
    """Every world x replication, counted before any runs."""
    return Workload.of_counts("explain", scenario, [(len(design.worlds), "worlds"), (replications, "replications")],
                              "fewer --replications, or fewer --channels", bytes_per_task=BYTES_PER_OBSERVATION)


def explain(scenario: Scenario, executor: Executor | None = None, *, workers: int = 1,
            policy: str | None = None, metrics: Sequence[str] = DEFAULT_METRICS,
            replications: int | None = None, channels: Sequence[str] | None = None,
            store: TaskStore | None = None, progress: Progress | None = None,
            limits: Limits | None = None) -> ExplainResult:
    """Run the counterfactual worlds and decompose the baseline -> ``policy`` difference of each metric.

    ``executor``: any ``concurrent.futures.Executor``; without one, ``workers`` local processes (1:
    in this process).  Results do not depend on either.  The worlds x replications are checked against
    ``limits`` (:func:`simulator.experiments.budget.admit`) before anything runs.
    """
    design = plan(scenario, policy, channels)
    metrics = check_metrics(metrics)
    count = replications or scenario.replications
    if executor is None:
        workers = admit(explain_workload(scenario, design, count),
                        dataclasses.replace(limits or Limits(), workers=workers))
        with open_executor(workers) as ex:
            return explain(scenario, ex, policy=policy, metrics=metrics, replications=replications,
                           channels=channels, store=store, progress=progress, limits=limits)
    admit(explain_workload(scenario, design, count), limits)
    indices = tuple(range(count))
    obs = run_worlds(scenario, design, indices, executor, store=store, progress=progress)
    first = obs[(next(iter(design.worlds.values())).id, indices[0])].values
    bad = [m for m in metrics if m not in first]
    if bad:
        raise ExplainInputError(f"unknown breakdown metric(s) {', '.join(bad)} in this scenario")
    rows, reps = [], []
    on = frozenset(design.channels)
    for m in metrics:
        y = _values(design, obs, m, indices)
        base_mean = float(y[(frozenset(), on)].mean())
        new_mean = float(y[(frozenset(design.rules), on)].mean())
        parts = decompose(design, obs, m, indices)
        total_mean = float(parts["rule"]["total"].mean())
        for kind, players in parts.items():
            for name, vals in players.items():
                mean, lo, hi = t_interval(vals)
                rows.append({"metric": m, "decomposition": kind, "mechanism": name, "label": _label(design, name),
                             "contribution": mean, "ci_low": lo, "ci_high": hi,
                             "share": mean / total_mean if total_mean else math.nan, "n": len(vals),
                             "baseline": design.baseline, "policy": design.policy,
                             "baseline_mean": base_mean, "policy_mean": new_mean})
                reps += [{"metric": m, "decomposition": kind, "mechanism": name, "replication": i,
                          "contribution": float(v)} for i, v in zip(indices, vals, strict=True)]
    world_rows = []
    for world in design.worlds.values():
        for i in indices:
            observed = obs[(world.id, i)].values
            world_rows.append({
                "world": world.id, "rules_from_new": "+".join(r for r in RULES if r in world.rules) or "none",
                "channels_off": "+".join(c for c in design.channels if c not in world.channels_on) or "none",
                "replication": i, **{m: observed[m] for m in metrics}})
    return ExplainResult(scenario, design, tuple(metrics), indices, pd.DataFrame(rows), pd.DataFrame(reps),
                         pd.DataFrame(world_rows))


# --------------------------------------------------------------------------- output


def _num(x: float, metric: str) -> str:
    if not math.isfinite(x):
        return "-"
    if metric.endswith(("rate", "share")):
        return f"{100 * x:+.2f} pt"
    return f"{x:+,.0f}" if abs(x) >= 100 else f"{x:+.3g}"


def format_explain(result: ExplainResult) -> str:
    """The tables ``inmail-sim explain`` prints: each metric's two decompositions with 95% CIs."""
    design = result.plan
    lines = [f"why {design.policy} differs from {design.baseline} ({result.scenario.name}, "
             f"{len(result.indices)} replications x {len(design.worlds)} worlds, common random numbers)"]
    if not design.rules:
        lines.append("  the two policies have the same rules")
    width = max(32, *(len(str(label)) for label in result.table["label"]))
    for m in result.metrics:
        head = result.table[result.table["metric"] == m].iloc[0]
        lines += ["", f"{m}: {head['baseline_mean']:.4g} ({design.baseline}) -> "
                      f"{head['policy_mean']:.4g} ({design.policy})"]
        for kind, title in (("rule", "by rule change"), ("channel", "by channel (switched off in both worlds)")):
            rows = result.decomposition(m, kind)
            lines.append(f"  {title}:")
            for r in rows.itertuples(index=False):
                share = f"{100 * r.share:5.0f}%" if math.isfinite(r.share) else "     -"
                sep = "  " + "-" * (width + 46) + "\n" if r.mechanism == "total" else ""
                lines.append(f"{sep}    {r.label:<{width}} {_num(r.contribution, m):>14}  "
                             f"[{_num(r.ci_low, m)}, {_num(r.ci_high, m)}] {share}")
    return "\n".join(lines)


def world_store(out: str | Path) -> TaskStore:
    """Where finished world replications are kept (``OUT/worlds``); a re-run reuses the unchanged ones."""
    return TaskStore(Path(out) / "worlds", Observation.from_arrays)


__all__ = [
    "CHANNELS", "DEFAULT_METRICS", "LABELS", "RULES", "UNLIMITED_CREDITS", "ExplainInputError", "ExplainPlan",
    "ExplainResult", "World",
    "available_channels", "decompose", "differing_rules", "explain", "explain_workload", "format_explain",
    "hybrid_policy", "plan", "run_worlds", "shapley", "switch_off", "world_count", "world_store",
]

