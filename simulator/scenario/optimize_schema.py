"""The ``optimize:`` block: which policy rules a search may change (levers), what it optimizes, what it must meet.

``inmail-sim optimize`` reads it (:mod:`simulator.experiments.search`); ``run`` ignores it.  Every lever
is a rule path of a policy block (``refund.window_days``, ``allotments.recruiter``, ``pooling``, ...)
with a range (``[low, high]``: two numbers) or a list of choices (strings, booleans, or three or
more numbers; ``{choices: [7, 90]}`` for two numbers).  A trial is the ``base`` preset with the
lever values written into a policy block and built by the same code as a scenario's policies, so a
value the config classes refuse is refused here, naming the lever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from simulator.core.config import SEAT_TYPES, Policy
from simulator.core.metrics import CURRENT_METRICS, METRIC_DIRECTIONS
from simulator.core.presets import preset
from simulator.scenario.schema_fields import PresetName, Seed, StrictSchema, in_range

Count = Annotated[int, in_range(1, 100_000)]
Fraction = Annotated[float, in_range(0, 1, lo_open=True, hi_open=True)]

REFUND_FIELDS = ("kind", "window_days", "latency_days")
ACCRUAL_FIELDS = ("kind", "cap_months", "expire_days")
THRESHOLD_FIELDS = ("enabled", "min_sends", "window_days", "min_rate", "warning_days", "ack_delay_days",
                    "improvement_days", "maturity_days", "review_every_days")
LEVER_PATHS: tuple[str, ...] = (
    *(f"refund.{f}" for f in REFUND_FIELDS), *(f"allotments.{s}" for s in SEAT_TYPES),
    *(f"accrual.{f}" for f in ACCRUAL_FIELDS), "pooling", *(f"threshold.{f}" for f in THRESHOLD_FIELDS),
)
"""Every policy rule a lever may set (the rules of the policy in force; not ``before.``, grants or dates)."""

CONSTRAINT = re.compile(r"^\s*([A-Za-z_]+)\s*(<=|>=)\s*(?:([-+0-9.eE]+)\s*(\*\s*baseline)?|(baseline))\s*$")


class RobustSchema(StrictSchema):
    """How a trial is scored across plausible worlds (``--worlds``)."""

    quantile: Fraction | None = None
    """The quantile of the world means scored (default 0.25 for maximize, 0.75 for minimize: a bad-ish world)."""
    share: Fraction = 0.8
    """A constraint is met when it holds in at least this share of the worlds."""
    replications: Annotated[int, in_range(1, 1000)] = 2
    """Replications per world and trial."""


class OptimizeSchema(StrictSchema):
    """``optimize:``: levers, objectives, constraints and the search's budget."""

    base: PresetName = "new_2015"
    levers: Annotated[dict[str, Any], Field(min_length=1)]
    objectives: Annotated[list[Any], Field(min_length=1)]
    constraints: list[str] = Field(default_factory=list)
    trials: Count = 80
    population: Annotated[int, in_range(2, 10_000)] = 16
    sampler: Literal["nsga2", "tpe"] = "nsga2"
    replications: Annotated[int, in_range(2, 10_000)] = 4
    max_replications: Annotated[int, in_range(2, 10_000)] = 16
    precision: Annotated[float, in_range(0, 10, lo_open=True)] = 0.1
    reevaluate: Annotated[int, in_range(2, 10_000)] = 40
    seed: Seed | None = None
    robust: RobustSchema = RobustSchema()


@dataclass(frozen=True)
class Lever:
    """One policy rule the search may change: a range (``int`` / ``float``) or a list of ``choices``."""

    path: str
    kind: Literal["int", "float", "choice"]
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Literal["maximize", "minimize"]

    @property
    def sign(self) -> int:
        """+1 when more is better."""
        return 1 if self.direction == "maximize" else -1


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``; ``factor`` times the base preset's value when ``relative``."""

    text: str
    metric: str
    op: Literal["<=", ">="]
    factor: float
    relative: bool

    def bound(self, baseline: Any) -> Any:
        """The bound, given the base preset's value (a number, or an array of them: one per world)."""
        return self.factor * baseline if self.relative else self.factor


@dataclass(frozen=True)
class OptimizeSpec:
    """The validated ``optimize:`` block."""

    base: str
    levers: tuple[Lever, ...]
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    trials: int
    population: int
    sampler: str
    replications: int
    max_replications: int
    precision: float
    reevaluate: int
    seed: int | None
    robust_quantile: float | None
    robust_share: float
    robust_replications: int


# --------------------------------------------------------------------------- levers -> policy


def policy_block(base: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A policy block (as a scenario's ``policies:`` holds it): ``{preset: base, <rule>: value, ...}``."""
    block: dict[str, Any] = {"preset": base}
    threshold_on = preset(base).threshold.enabled
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if not rest:
            block[head] = value
            continue
        section = block.setdefault(head, {} if head != "threshold" else {"enabled": threshold_on})
        section[rest] = value
    return block


def lever_policy(name: str, base: str, values: Mapping[str, Any]) -> Policy:
    """The ``base`` preset with the lever ``values`` applied, built like a scenario's policy.

    Raises ``ValueError`` naming the rule and what it allows when the values make no valid policy.
    """
    from simulator.scenario.build import BuildError, ConfigBuilder
    from simulator.scenario.schema import PolicySchema

    block = policy_block(base, values)
    try:
        schema = PolicySchema.model_validate(block)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
    builder = ConfigBuilder({"policies": {name: block}}, {}, None)
    try:
        return builder.policy(name, schema)
    except BuildError:
        issue = builder.issues[0]
        raise ValueError(f"{issue.path.removeprefix(f'policies.{name}.')}: {issue.message}") from None


# --------------------------------------------------------------------------- building the spec


def base_value(base: str, path: str) -> Any:
    """The ``base`` preset's value of the rule a lever path names."""
    return _rule_value(preset(base), path)


def _rule_value(base: Policy, path: str) -> Any:
    """The base preset's value of a lever path (its type says int, float, bool or text)."""
    head, _, rest = path.partition(".")
    if head == "allotments":
        return base.phase.allotment(rest)
    if head == "pooling":
        return base.phase.pooling
    holder = base.threshold if head == "threshold" else getattr(base.phase, head)
    return getattr(holder, rest)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_lever(base: str, path: str, raw: Any) -> tuple[Lever | None, str]:
    """A lever from its YAML value, or (None, what is wrong and what is allowed)."""
    if path.startswith("market.") or path.split(".")[0] in ("members", "recruiters", "response", "fatigue",
                                                            "sending"):
        return None, ("a lever is a policy rule; market values are assumptions (put them in uncertain: or "
                      "sweep:); allowed lever paths: " + ", ".join(LEVER_PATHS))
    if path not in LEVER_PATHS:
        return None, "unknown lever path; allowed: " + ", ".join(LEVER_PATHS)
    current = _rule_value(preset(base), path)
    if isinstance(raw, Mapping):
        extra = set(raw) - {"low", "high", "choices"}
        if extra or ("choices" in raw) == ("low" in raw or "high" in raw):
            return None, "give [low, high], a list of choices, {low: L, high: H} or {choices: [...]}"
        if "choices" in raw:
            return _choices(path, raw["choices"], current)
        raw = [raw.get("low"), raw.get("high")]
        if not all(_number(v) for v in raw):
            return None, "{low, high} needs two numbers"
    if not isinstance(raw, list) or not raw:
        return None, "give a range [low, high] (two numbers) or a non-empty list of choices"
    if len(raw) == 2 and all(_number(v) for v in raw) and _number(current):
        low, high = raw
        if not low < high:
            return None, f"an empty range: needs low < high, got [{low:g}, {high:g}]"
        if isinstance(current, int):
            if not all(float(v).is_integer() for v in raw):
                return None, f"{path} is a whole number: give whole-number bounds, got [{low:g}, {high:g}]"
            return Lever(path, "int", int(low), int(high)), ""
        return Lever(path, "float", float(low), float(high)), ""
    return _choices(path, raw, current)


def _choices(path: str, raw: Any, current: Any) -> tuple[Lever | None, str]:
    if not isinstance(raw, list) or len(raw) < 2:
        return None, "choices need a list of at least two values"
    if len(set(map(repr, raw))) != len(raw):
        return None, "a choice is listed twice"
    if isinstance(current, bool) and not all(isinstance(v, bool) for v in raw):
        return None, f"{path} is on/off: choices must be true/false"
    if isinstance(current, str) and not all(isinstance(v, str) for v in raw):
        return None, f"{path} is a name: choices must be names (e.g. on_silence, on_response)"
    if _number(current) and not all(_number(v) for v in raw):
        return None, f"{path} is a number: choices must be numbers"
    if isinstance(current, float):
        raw = [float(v) for v in raw]
    return Lever(path, "choice", choices=tuple(raw)), ""


def lever_values(lever: Lever) -> list[Any]:
    """The values whose policies must build: both ends of a range, or every choice."""
    if lever.kind == "choice":
        return list(lever.choices)
    ends = [float(lever.low or 0), float(lever.high or 0)]
    return [int(v) for v in ends] if lever.kind == "int" else list(ends)


def parse_objective(raw: Any) -> tuple[Objective | None, str]:
    """``metric`` (direction from METRIC_DIRECTIONS) or ``{maximize: metric}`` / ``{minimize: metric}``."""
    allowed = "allowed metrics: " + ", ".join(CURRENT_METRICS)
    if isinstance(raw, Mapping) and len(raw) == 1:
        (direction, metric), = raw.items()
        if direction not in ("maximize", "minimize"):
            return None, "write {maximize: METRIC} or {minimize: METRIC}"
        if metric not in CURRENT_METRICS:
            return None, f"not a metric; {allowed}"
        return Objective(str(metric), direction), ""
    if isinstance(raw, str):
        if raw not in CURRENT_METRICS:
            return None, f"not a metric; {allowed}"
        if raw not in METRIC_DIRECTIONS:
            return None, f"{raw} has no better direction: write {{maximize: {raw}}} or {{minimize: {raw}}}"
        return Objective(raw, "maximize" if METRIC_DIRECTIONS[raw] > 0 else "minimize"), ""
    return None, f"write a metric name, {{maximize: METRIC}} or {{minimize: METRIC}}; {allowed}"


def parse_constraint(text: str) -> tuple[Constraint | None, str]:
    """``metric <= number``, ``metric >= number * baseline`` or ``metric <= baseline``."""
    match = CONSTRAINT.match(text)
    usage = "write METRIC <= NUMBER, METRIC >= NUMBER, or METRIC <= FACTOR * baseline (e.g. net_credit_burn <= " \
            "1.1 * baseline; baseline = the base preset's value)"
    if match is None:
        return None, usage
    metric, op, number, times, alone = match.groups()
    if metric not in CURRENT_METRICS:
        return None, "not a metric; allowed metrics: " + ", ".join(CURRENT_METRICS)
    try:
        factor = 1.0 if alone else float(number)
    except ValueError:
        return None, usage
    return Constraint(text.strip(), metric, "<=" if op == "<=" else ">=", factor, bool(times or alone)), ""


def flat_levers(levers: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str, Any]]:
    """``(key path, lever path, value)`` per lever; a section written nested (``refund: {window_days: [7, 90]}``,
    or what ``--set optimize.levers.refund.latency_days=[0, 3]`` makes) counts as its dotted levers."""
    out: list[tuple[tuple[str, ...], str, Any]] = []
    for key, raw in levers.items():
        nested = (isinstance(raw, Mapping) and raw and key not in LEVER_PATHS
                  and not set(raw) & {"low", "high", "choices"})
        if nested:
            out += [((key, str(rule)), f"{key}.{rule}", value) for rule, value in raw.items()]
        else:
            out.append(((key,), key, raw))
    return out


def build_optimize(schema: OptimizeSchema, fail: Any) -> OptimizeSpec | None:
    """The validated block; each problem goes to ``fail(path, value, message)`` (None if there were any)."""
    ok = True
    levers: list[Lever] = []
    for where, path, raw in flat_levers(schema.levers):
        lever, problem = parse_lever(schema.base, path, raw)
        if lever is not None:
            problem = _first_invalid(schema.base, lever)
        if lever is not None and any(lv.path == path for lv in levers):
            problem = f"the lever {path} is given twice (as {path}: and nested under {path.partition('.')[0]}:)"
        if problem:
            fail(("optimize", "levers", *where), raw, problem)
            ok = False
        elif lever is not None:
            levers.append(lever)
    objectives: list[Objective] = []
    for index, raw in enumerate(schema.objectives):
        objective, problem = parse_objective(raw)
        if objective is None:
            fail(("optimize", "objectives", index), raw, problem)
            ok = False
        else:
            objectives.append(objective)
    if len({o.metric for o in objectives}) != len(objectives):
        fail(("optimize", "objectives"), [o.metric for o in objectives], "a metric is listed twice")
        ok = False
    constraints: list[Constraint] = []
    for index, text in enumerate(schema.constraints):
        constraint, problem = parse_constraint(text)
        if constraint is None:
            fail(("optimize", "constraints", index), text, problem)
            ok = False
        else:
            constraints.append(constraint)
    if schema.max_replications < schema.replications:
        fail(("optimize", "max_replications"), schema.max_replications,
             f"must be >= replications ({schema.replications})")
        ok = False
    if not ok:
        return None
    return OptimizeSpec(
        base=schema.base, levers=tuple(levers), objectives=tuple(objectives), constraints=tuple(constraints),
        trials=schema.trials, population=schema.population, sampler=schema.sampler,
        replications=schema.replications, max_replications=schema.max_replications, precision=schema.precision,
        reevaluate=max(schema.reevaluate, schema.max_replications), seed=schema.seed,
        robust_quantile=schema.robust.quantile, robust_share=schema.robust.share,
        robust_replications=schema.robust.replications)


def _first_invalid(base: str, lever: Lever) -> str:
    """Why a value of the lever makes no valid policy ('' when every end or choice builds)."""
    for value in lever_values(lever):
        try:
            lever_policy("trial", base, {lever.path: value})
        except ValueError as exc:
            allowed = str(exc).split(": ", 1)[-1]
            return f"the value {value!r} makes the {base} policy invalid: {lever.path} {allowed}"
    return ""

