"""The ``uncertain:``, ``decision:`` and ``worlds:`` blocks, checked against the scenario's market and built.

* ``uncertain:`` -> ``tuple[UncertainParameter, ...]``: every path must name a continuous market field
  (:mod:`.market_paths`), no field may belong to two parameters, and the prior's whole support must
  give valid markets - checked by building the world at the prior's low and high ends (each parameter
  alone, then all together), so the config classes' own range checks (core/limits.py) decide.
* ``decision:`` -> ``tuple[Requirement, ...]``: known metric names (deprecated names mapped), one of the
  allowed operators, a finite bound.
* ``worlds:`` -> ``"prior"`` or the resolved path of a posterior file, confined like ``extends:``.  A
  missing file is not an error here: the study that reads it checks it (with its content), and a
  scenario reloaded elsewhere (a run folder's scenario.resolved.yaml, a sweep point built from the
  resolved mapping) must still load.

Every problem becomes an issue at the YAML line that set the value (through the ``ConfigBuilder``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from simulator.core.config import ConfigError, Market
from simulator.core.metrics import CURRENT_METRICS, canonical_metric
from simulator.scenario.build import ConfigBuilder
from simulator.scenario.confinement import file_kind_problem
from simulator.scenario.decision import Requirement
from simulator.scenario.errors import NO_VALUE, SET_SOURCE, PathT
from simulator.scenario.locations import locate, value_at
from simulator.scenario.market_paths import MarketPathError, market_field
from simulator.scenario.uncertain import Prior, UncertainParameter, world_market
from simulator.scenario.uncertain_schema import DecisionSchema, RequirementSchema, UncertainParameterSchema

RESERVED_NAMES = ("world", "weight", "replication", "policy")
"""Column names of worlds.csv / posterior.csv / world_outcomes.csv that a parameter may not take."""

PRIOR_WORLDS = "prior"
"""The ``worlds:`` value that draws worlds from the priors of the ``uncertain:`` block."""

ALLOWED_WORLDS = ("'prior' (draws from the uncertain: block's priors) or a posterior.csv in this scenario's "
                  "folder or a subfolder of it, relative to the file that names it (absolute paths and ../ "
                  "out of the folder are refused; --allow-outside-extends allows them)")


MIN_PRIOR_MASS = 1e-9
"""The smallest share of a distribution a truncation may keep: below it the inverse-CDF draws lose their
precision (and a cut that far into a tail is almost surely a slip in low/high or a/b)."""


def _given_paths(base: PathT, schema: UncertainParameterSchema) -> list[tuple[str, float | None, PathT]]:
    """``(path, factor or None, where in the data)`` for each field the parameter names."""
    if schema.path is not None:
        return [(schema.path, None, (*base, "path"))]
    if isinstance(schema.paths, dict):
        return [(path, factor, (*base, "paths", path)) for path, factor in schema.paths.items()]
    return [(path, None, (*base, "paths", index)) for index, path in enumerate(schema.paths or [])]


def _fields(name: str, schema: UncertainParameterSchema, market: Market, builder: ConfigBuilder,
            owners: dict[str, str]) -> tuple[tuple[str, float], ...] | None:
    """``(path, factor)`` for each field, or None after recording the problems (``owners``: field -> parameter)."""
    out: list[tuple[str, float]] = []
    ok = True
    for path, factor, where in _given_paths(("uncertain", name), schema):
        try:
            found = market_field(market, path)
        except MarketPathError as exc:
            builder.fail(where, path, str(exc))
            ok = False
            continue
        if factor is None:
            factor = found.value if schema.relative else 1.0
            if factor == 0:
                builder.fail(where, path, "relative: true makes the value multiply this field, which is 0 in the "
                                          "scenario; give {path: factor} instead")
                ok = False
        elif factor == 0 or not math.isfinite(factor):
            builder.fail(where, factor, "a factor must be a finite number other than 0")
            ok = False
        owner = owners.setdefault(found.path, f"{name}:{len(out)}")
        if owner != f"{name}:{len(out)}":
            builder.fail(where, path, f"{found.path} is already set by uncertain parameter "
                                      f"{owner.rsplit(':', 1)[0]!r}: a field belongs to one parameter")
            ok = False
        out.append((path, float(factor)))
    return tuple(out) if ok else None


def _prior(name: str, schema: UncertainParameterSchema, builder: ConfigBuilder) -> Prior | None:
    """The prior (truncated to ``low``/``high``), or None when the truncation keeps (almost) nothing."""
    given = schema.prior
    prior = Prior(given.kind, given.a, given.b,  # type: ignore[arg-type]  # kind: checked against PRIOR_KINDS
                  -math.inf if given.low is None else given.low, math.inf if given.high is None else given.high)
    mass = prior.mass
    if not (mass >= MIN_PRIOR_MASS and prior.low < prior.high):
        kept = "nothing" if not mass > 0 else f"only {mass:.1e}"
        builder.fail(("uncertain", name, "prior"), _prior_text(prior),
                     f"low/high [{prior.lower:g}, {prior.upper:g}] keep {kept} of the {prior.kind} prior's "
                     f"probability (at least {MIN_PRIOR_MASS:g}): move low/high or a/b")
        return None
    return prior


def _parameter(name: str, schema: UncertainParameterSchema, market: Market, builder: ConfigBuilder,
               owners: dict[str, str]) -> UncertainParameter | None:
    """One parameter, or None after recording its problems."""
    named_ok = name not in RESERVED_NAMES
    if not named_ok:
        builder.fail(("uncertain", name), name,
                     f"is a column name of the worlds files; not allowed: {', '.join(RESERVED_NAMES)}")
    fields = _fields(name, schema, market, builder, owners)
    prior = _prior(name, schema, builder)
    if fields is None or prior is None or not named_ok:
        return None
    parameter = UncertainParameter(name, fields, prior, schema.reason)
    return parameter if _support_fits(parameter, market, builder) else None


def _support_fits(parameter: UncertainParameter, market: Market, builder: ConfigBuilder) -> bool:
    """Whether the worlds at the prior's low and high ends are valid markets (else an issue)."""
    for end, value in (("low", parameter.prior.low), ("high", parameter.prior.high)):
        problem = _world_problem(market, (parameter,), (value,))
        if problem is not None:
            builder.fail(("uncertain", parameter.name, "prior"), _prior_text(parameter.prior),
                         f"at the prior's {end} end ({value:g}) {problem}; narrow the prior (low/high) to the "
                         "field's allowed range")
            return False
    return True


def _world_problem(market: Market, parameters: tuple[UncertainParameter, ...], values: tuple[float, ...]) -> str | None:
    """Why the world with ``values`` is not a valid market, or None."""
    if not all(math.isfinite(v) for v in values):
        return "the value is not finite"
    try:
        world_market(market, parameters, values)
    except ConfigError as exc:
        return f"{exc.field}: {exc.message}"
    return None


def _prior_text(prior: Prior) -> dict[str, object]:
    shown: dict[str, object] = {"kind": prior.kind, "a": prior.a, "b": prior.b}
    if math.isfinite(prior.lower):
        shown["low"] = prior.lower
    if math.isfinite(prior.upper):
        shown["high"] = prior.upper
    return shown


def build_uncertain(block: Mapping[str, UncertainParameterSchema] | None, market: Market,
                    builder: ConfigBuilder) -> tuple[UncertainParameter, ...]:
    """The uncertain parameters, in file order; problems are recorded in ``builder``."""
    if not block:
        return ()
    owners: dict[str, str] = {}
    built = [_parameter(name, schema, market, builder, owners) for name, schema in block.items()]
    parameters = tuple(p for p in built if p is not None)
    if len(parameters) == len(built) and len(parameters) > 1:
        for end in ("low", "high"):
            values = tuple(getattr(p.prior, end) for p in parameters)
            problem = _world_problem(market, parameters, values)
            if problem is not None:
                builder.fail(("uncertain",), NO_VALUE, f"with every parameter at its prior's {end} end, {problem}")
    return parameters


def build_decision(schema: DecisionSchema | None, builder: ConfigBuilder) -> tuple[Requirement, ...]:
    """The requirements, in file order; problems are recorded in ``builder``."""
    if schema is None:
        return ()
    return check_requirements(dict(enumerate(schema.requirements)), builder)


def check_requirements(entries: Mapping[int, RequirementSchema], builder: ConfigBuilder) -> tuple[Requirement, ...]:
    """The requirements of the entries (by index) whose metric is known; the others become issues."""
    out: list[Requirement] = []
    for index, entry in entries.items():
        where: PathT = ("decision", "requirements", index)
        if isinstance(value_at(builder.data, where), dict):
            where = (*where, "metric")
        metric = canonical_metric(entry.metric)
        if metric not in CURRENT_METRICS:
            builder.fail(where, entry.metric, "unknown metric; allowed: " + ", ".join(CURRENT_METRICS))
            continue
        out.append(Requirement(metric, entry.op, entry.bound))  # type: ignore[arg-type]  # op: a Literal
    return tuple(out)


def build_worlds(value: str | None, declared: int, builder: ConfigBuilder, allow_outside: bool) -> str | None:
    """``"prior"``, the resolved posterior path, or None; problems are recorded in ``builder``.

    ``declared`` is the number of parameters the ``uncertain:`` block declares (valid or not).
    """
    if value is None:
        return None
    if not declared:
        builder.fail(("worlds",), value, "worlds need an uncertain: block with at least one parameter (the "
                                         "assumptions that vary from world to world)")
        return None
    if value == PRIOR_WORLDS:
        return PRIOR_WORLDS
    loc = locate(builder.marks, ("worlds",), builder.file)
    from_file = builder.file is not None and not loc.file.startswith(SET_SOURCE)
    folder = Path(loc.file).parent if from_file else Path.cwd()
    resolved = (folder / value).resolve()
    if from_file and not allow_outside:
        root = Path(str(builder.file)).resolve().parent
        if Path(value).is_absolute() or value.startswith("~"):
            builder.fail(("worlds",), value, f"an absolute path is refused; allowed: {ALLOWED_WORLDS}")
            return None
        if not resolved.is_relative_to(root):
            builder.fail(("worlds",), value, f"leads out of the scenario's folder {root}; allowed: {ALLOWED_WORLDS}")
            return None
    problem = file_kind_problem(resolved)
    if problem is not None and resolved.exists():  # a folder, FIFO or device: never a posterior
        builder.fail(("worlds",), value, f"{problem}; allowed: {ALLOWED_WORLDS}")
        return None
    return str(resolved)
