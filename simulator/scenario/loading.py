"""The validated :class:`Scenario` and :func:`load_scenario`: YAML in, frozen config objects out.

A scenario is one YAML mapping (see ``scenarios/old_vs_new.yaml`` for a commented example)::

    name: old_vs_new
    start_date: 2015-02-01
    horizon_days: 365
    replications: 20
    root_seed: 20150201
    baseline: old
    market: {members: {...}, recruiters: [...], response: {...}, fatigue: {...}, sending: {...}}
    policies:
      old: {preset: old_2014}
      new: {preset: new_2015, threshold: off}

Pipeline: read YAML (recording the line of every value, rejecting duplicate keys; :mod:`.files`) ->
resolve ``extends`` (mappings merge, lists replace) -> apply ``--set path=value`` overrides
(:mod:`.overrides`) -> validate with pydantic (unknown keys are errors; :mod:`.schema`) -> build
:mod:`simulator.core.config` objects (:mod:`.build`).  Every problem found on the way becomes an
:class:`~simulator.scenario.errors.Issue`; they are raised together as one ``ScenarioError``.
``null`` always means "not given" (the preset's or default value): in a file that ``extends``
another, or in ``--set``, it removes what was set before (so ``policies: {new: null}`` drops an
inherited policy).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simulator.core.config import ConfigError, Market, Policy, RunConfig
from simulator.scenario.build import BuildError, ConfigBuilder
from simulator.scenario.confinement import outside_allowed
from simulator.scenario.decision import Requirement
from simulator.scenario.errors import NO_VALUE, SAFE_NAME_RULE, Issue, PathT, ScenarioError, safe_name
from simulator.scenario.files import resolve_file
from simulator.scenario.locations import Loc, issue_at
from simulator.scenario.optimize_schema import OptimizeSpec, build_optimize
from simulator.scenario.overrides import Overrides, apply_overrides, override_texts
from simulator.scenario.scale import scale_market, with_scale
from simulator.scenario.schema import MarketSchema, PolicySchema, ScenarioSchema
from simulator.scenario.schema_issues import validation_issues
from simulator.scenario.uncertain import UncertainParameter
from simulator.scenario.uncertain_build import build_decision, build_uncertain, build_worlds, check_requirements
from simulator.scenario.uncertain_schema import RequirementSchema, UncertainParameterSchema

CALENDAR_MARGIN_DAYS = 400
"""Days past the horizon the calendar may reach (the refund tail and next month's grant)."""


@dataclass(frozen=True)
class Scenario:
    """A validated experiment: the market, the named policies, the calendar and the seeds."""

    name: str
    description: str
    market: Market
    policies: dict[str, Policy]
    baseline: str
    run: RunConfig
    replications: int
    max_replications: int
    root_seed: int
    resolved: dict[str, Any]
    source: str | None = None
    overrides: tuple[str, ...] = ()
    scale: float = 1.0
    """The factor members and recruiter groups were scaled by (``market`` holds the scaled counts)."""
    full_market: Market | None = field(default=None, repr=False, compare=False)
    """The market at scale 1 (None when ``scale`` is 1: then it is ``market``)."""
    locations: Mapping[PathT, Loc] = field(default_factory=dict, repr=False, compare=False)
    """Where each value of ``resolved`` came from (file and line, or ``--set``)."""
    uncertain: tuple[UncertainParameter, ...] = ()
    """The ``uncertain:`` block: market assumptions that vary across plausible worlds (``run`` ignores it)."""
    decision: tuple[Requirement, ...] = ()
    """The ``decision:`` block's requirements on metrics (``run`` ignores it)."""
    worlds: str | None = None
    """The ``worlds:`` key: ``"prior"``, the resolved path of a posterior.csv, or None."""
    optimize: OptimizeSpec | None = None
    """The ``optimize:`` block: levers, objectives and constraints of ``inmail-sim optimize`` (``run`` ignores it)."""

    def issue(self, path: PathT, message: str, value: Any = NO_VALUE) -> Issue:
        """An :class:`Issue` at ``path`` of ``resolved``, located at its file and line (for sweeps)."""
        return issue_at(self.resolved, self.locations, self.source, path, value, message)

    @property
    def policy_names(self) -> list[str]:
        """Baseline first, then the others in file order."""
        return [self.baseline] + [name for name in self.policies if name != self.baseline]

    def resolved_yaml(self) -> str:
        """The scenario after ``extends`` and overrides, as YAML (what ``scenario.resolved.yaml`` holds)."""
        return yaml.safe_dump(self.resolved, sort_keys=False, allow_unicode=True, width=100)


def scenario_yaml(data: Mapping[str, Any], header: str = "") -> str:
    """A scenario mapping as YAML text, ``header`` lines as comments on top (for generated scenario files)."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return lines + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100)


def load_scenario(source: str | Path | Mapping[str, Any], overrides: Overrides = (),
                  scale: float | None = None, *, allow_outside: bool | None = None) -> Scenario:
    """Load, merge, override and validate a scenario; raise ``ScenarioError`` listing every problem.

    ``source`` is a YAML file path or an already-parsed mapping (e.g. from a notebook).
    ``overrides`` are ``"path=value"`` strings (value parsed as YAML) or a ``{path: value}`` mapping.
    ``scale`` (in (0, 10]) multiplies members and every recruiter group together, after ``extends``
    and the overrides; it is the override ``scale=F`` (recorded in ``Scenario.overrides``).
    ``allow_outside=True`` lets ``extends:`` name files outside the scenario's folder tree (refused
    by default; None: as the enclosing ``outside_extends_allowed()`` block says, i.e. the CLI flag).
    """
    if scale is not None:
        overrides = with_scale(overrides, scale)
    duplicate_keys: list[Issue] = []
    if isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
        file = None
        marks: dict[PathT, Loc] = {}
        if "extends" in data:
            raise ScenarioError([Issue(None, None, "extends", data["extends"],
                                       "extends needs a scenario file; load the file by path instead")])
    else:
        path = Path(source)
        file = str(path)
        data, marks = resolve_file(path, duplicate_keys, allow_outside=outside_allowed(allow_outside))
    override_issues = apply_overrides(data, marks, overrides)
    if override_issues:
        raise ScenarioError(duplicate_keys + override_issues)
    try:
        scenario = _validate(data, marks, file, tuple(override_texts(overrides)), outside_allowed(allow_outside))
    except ScenarioError as exc:
        raise ScenarioError(duplicate_keys + exc.issues) from None
    if duplicate_keys:
        raise ScenarioError(duplicate_keys)
    return scenario


def _validate(data: dict[str, Any], marks: Mapping[PathT, Loc], file: str | None,
              overrides: tuple[str, ...], allow_outside: bool = False) -> Scenario:
    """Check ``data`` against the schema, build the config objects, and check what spans sections."""
    try:
        schema = ScenarioSchema.model_validate(data)
    except ValidationError as exc:
        issues = validation_issues(exc, data, marks, file) + _name_issues(data, marks, file)
        raise ScenarioError(issues + _build_valid_sections(data, marks, file, exc)) from None
    builder = ConfigBuilder(data, marks, file)
    baseline = schema.baseline if schema.baseline is not None else next(iter(schema.policies))
    if baseline not in schema.policies:
        builder.fail(("baseline",), baseline, "must name one of the policies: " + ", ".join(schema.policies))
    market: Market | None = None
    with contextlib.suppress(BuildError):
        market = builder.market(schema.market)
    policies: dict[str, Policy] = {}
    for name, policy_schema in schema.policies.items():
        with contextlib.suppress(BuildError):
            policies[name] = builder.policy(name, policy_schema)
    run = _run_config(schema, builder)
    uncertain = build_uncertain(schema.uncertain, market, builder) if market is not None else ()
    decision = build_decision(schema.decision, builder)
    worlds = build_worlds(schema.worlds, len(schema.uncertain or {}), builder, allow_outside)
    optimize = build_optimize(schema.optimize, builder.fail) if schema.optimize is not None else None
    if schema.max_replications < schema.replications:
        builder.fail(("max_replications",), schema.max_replications,
                     f"must be >= replications ({schema.replications})")
    builder.issues += _name_issues(data, marks, file)
    if builder.issues:
        raise ScenarioError(builder.issues)
    assert market is not None
    factor = 1.0 if schema.scale is None else float(schema.scale)
    try:
        scaled = scale_market(market, factor)
    except ConfigError as exc:  # a scaled count outside its range (e.g. 10^9 members x 10)
        builder.fail(("scale",), factor, f"scales {exc.field} out of its range: {exc.message}")
        raise ScenarioError(builder.issues) from None
    name = schema.name or (_name_from_file(Path(file)) if file else "scenario")
    resolved = copy.deepcopy(data)
    resolved.setdefault("name", name)
    resolved.setdefault("baseline", baseline)
    return Scenario(
        name=name, description=schema.description, market=scaled, policies=policies, baseline=baseline, run=run,
        replications=schema.replications, max_replications=schema.max_replications, root_seed=schema.root_seed,
        resolved=resolved, source=file, overrides=overrides, scale=factor,
        full_market=None if scaled is market else market, locations=dict(marks),
        uncertain=uncertain, decision=decision, worlds=worlds, optimize=optimize,
    )


def _name_issues(data: dict[str, Any], marks: Mapping[PathT, Loc], file: str | None) -> list[Issue]:
    """The scenario ``name`` names the default output folder (``runs/<name>-<time>``): one safe folder name."""
    name = data.get("name")
    if not isinstance(name, str) or not name or safe_name(name):
        return []
    return [issue_at(data, marks, file, ("name",), name, f"{SAFE_NAME_RULE} (it names the output folder)")]


def _name_from_file(path: Path) -> str:
    """The file's stem as a scenario name: characters outside the safe alphabet become '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) or "scenario"


def _run_config(schema: ScenarioSchema, builder: ConfigBuilder) -> RunConfig:
    """The calendar; one that runs past Python's last date is reported to ``builder``."""
    given: dict[str, Any] = {}
    if schema.start_date is not None:
        given["start_date"] = schema.start_date
    if schema.horizon_days is not None:
        given["horizon_days"] = schema.horizon_days
    run = RunConfig(**given)
    try:
        run.start_date + dt.timedelta(days=run.horizon_days + CALENDAR_MARGIN_DAYS)
    except OverflowError:
        builder.fail(("start_date",), run.start_date.isoformat(),
                     f"start_date + horizon_days ({run.horizon_days}) runs past the last representable date "
                     "(9999-12-31)")
    return run


def _build_valid_sections(data: dict[str, Any], marks: Mapping[PathT, Loc], file: str | None,
                          exc: ValidationError) -> list[Issue]:
    """Build the market and the policies that passed validation, to report their problems too."""
    invalid = {tuple(error["loc"][:2]) for error in exc.errors()} | {tuple(error["loc"][:1]) for error in exc.errors()}
    builder = ConfigBuilder(data, marks, file)
    market: Market | None = None
    if ("market",) not in invalid and isinstance(data.get("market"), (dict, type(None))):
        with contextlib.suppress(BuildError, ValidationError):
            market = builder.market(MarketSchema.model_validate(data["market"]) if data.get("market") else None)
    block = data.get("uncertain")
    if market is not None and isinstance(block, dict):
        valid = {}
        for name, entry in block.items():
            if ("uncertain", name) not in invalid and isinstance(name, str):
                with contextlib.suppress(ValidationError):
                    valid[name] = UncertainParameterSchema.model_validate(entry)
        build_uncertain(valid, market, builder)
    decision = data.get("decision")
    requirements = decision.get("requirements") if isinstance(decision, dict) else None
    if isinstance(requirements, list):
        entries = {}
        for index, entry in enumerate(requirements):
            with contextlib.suppress(ValidationError):
                entries[index] = RequirementSchema.model_validate(entry)
        check_requirements(entries, builder)
    policies = data.get("policies")
    if isinstance(policies, dict):
        for name, entry in policies.items():
            if ("policies", name) not in invalid and isinstance(name, str):
                with contextlib.suppress(BuildError, ValidationError):
                    builder.policy(name, PolicySchema.model_validate(entry))
    return builder.issues


def with_changes(scenario: Scenario, *, replications: int | None = None, root_seed: int | None = None,
                 max_replications: int | None = None) -> Scenario:
    """A copy with the experiment settings a command line may change (kept in ``resolved`` too)."""
    resolved = copy.deepcopy(scenario.resolved)
    changes: dict[str, Any] = {}
    for key, value in (("replications", replications), ("root_seed", root_seed),
                       ("max_replications", max_replications)):
        if value is not None:
            changes[key] = value
            resolved[key] = value
    wanted = changes.get("replications", scenario.replications)
    if changes.get("max_replications", scenario.max_replications) < wanted:
        changes["max_replications"] = resolved["max_replications"] = wanted
    return replace(scenario, resolved=resolved, **changes)


def shrink_overrides(source: str | Path | Mapping[str, Any], *, members: int = 2000, recruiters: int = 60,
                     horizon_days: int = 60, replications: int = 2, allow_outside: bool | None = None) -> list[str]:
    """``--set`` strings that make a scenario small and fast, keeping its shape (for tests and quick looks).

    Recruiter groups are scaled to about ``recruiters`` in total (a non-empty group keeps at least
    one recruiter, so a rare bulk-heavy group does not vanish); members, horizon and replications
    are set outright.
    """
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        data, _ = resolve_file(Path(source), [], allow_outside=outside_allowed(allow_outside))
    out = [f"market.members.count={members}", f"horizon_days={horizon_days}",
           f"replications={replications}", f"max_replications={max(replications, 2)}"]
    groups = (data.get("market") or {}).get("recruiters")
    if isinstance(groups, list) and groups:
        counts = [int(group.get("count", 0)) if isinstance(group, dict) else 0 for group in groups]
        total = sum(counts) or 1
        for index, (group, count) in enumerate(zip(groups, counts, strict=True)):
            new_count = max(1, round(count * recruiters / total)) if count > 0 else 0
            named = isinstance(group, dict) and isinstance(group.get("name"), str)
            key = group["name"] if named else index
            out.append(f"market.recruiters.{key}.count={new_count}")
    return out
