"""Scenario files: YAML in, frozen config objects out, and errors an analyst can act on.

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

Pipeline: read YAML (recording the line of every value, rejecting duplicate keys) ->
resolve ``extends`` (mappings merge, lists replace) -> apply ``--set path=value`` overrides ->
validate with pydantic (unknown keys are errors) -> build :mod:`simulator.core.config` objects.
Every problem found on the way becomes an :class:`Issue`; they are raised together as one
:class:`ScenarioError`.  ``null`` always means "not given" (the preset's or default value): in a
file that ``extends`` another, or in ``--set``, it removes what was set before (so
``policies: {new: null}`` drops an inherited policy).
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulator.core.config import (
    SEAT_TYPES,
    Adaptation,
    Dist,
    Fatigue,
    Grant,
    Market,
    MemberPopulation,
    Phase,
    Policy,
    RecruiterGroup,
    ResponseModel,
    RunConfig,
    Segment,
    SendingModel,
)
from simulator.core.metrics import METRIC_NAMES
from simulator.core.presets import PRESETS, preset

PathT = tuple[str | int, ...]
"""A location inside the scenario mapping, e.g. ``("market", "recruiters", 2, "count")``."""

SET_SOURCE = "--set"


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Issue:
    """One problem in a scenario: where it is, what was given, and what is allowed."""

    file: str | None
    line: int | None
    path: str
    value: Any
    message: str

    def render(self) -> str:
        """``file:line: path = value: message`` (parts that are unknown are left out)."""
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
        head = self.path or "(top level)"
        if self.value is not NO_VALUE:
            head += f" = {_show(self.value)}"
        return f"{where}: {head}: {self.message}"


class ScenarioError(ValueError):
    """Invalid scenario input; ``issues`` lists every problem found (the CLI exits with code 2)."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: list[Issue] = sorted(issues, key=lambda i: (
            (i.file or "").startswith(SET_SOURCE), i.file or "", i.line or 0))
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.issues)
        lines = [f"invalid scenario: {n} problem{'s' if n != 1 else ''}"]
        lines += ["  " + i.render() for i in self.issues]
        return "\n".join(lines)


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Any = _NoValue()


def _show(value: Any, limit: int = 60) -> str:
    if isinstance(value, (dict, list)):
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    elif isinstance(value, str):
        text = repr(value)
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- YAML with line numbers


@dataclass(frozen=True)
class Loc:
    """Where a value came from: a file and 1-based line, or a ``--set`` argument (line None)."""

    file: str
    line: int | None


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mapping keys stay the strings written (``off:`` is the key 'off')."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # [a, b]: or {a: 1}: - never a field name
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark)
            out[key_node.value] = self.construct_object(value_node, deep=deep)
        return out


    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:  # type: ignore[override]
        """An impossible date (2015-13-01) stays text, so validation can say where it is."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return self.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_implicit_resolver(  # YAML 1.1 reads 1e6 (no dot) as text; analysts mean the number
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


MAX_FILE_BYTES = 1 << 20
"""Largest scenario file read (scenario files are a few kilobytes; this stops a wrong file early)."""
MAX_DEPTH = 40
"""Deepest nesting accepted (a scenario needs about 8 levels)."""
MAX_VALUES = 100_000
"""Most values a file may hold once YAML aliases are expanded (stops 'billion laughs' alias bombs)."""


class _TooBigError(Exception):
    """The YAML structure is deeper, larger or more self-referential than any scenario."""


def _walk_nodes(node: yaml.Node, path: PathT, file: str, marks: dict[PathT, Loc], issues: list[Issue],
                depth: int = 0, ancestors: frozenset[int] = frozenset(), count: list[int] | None = None) -> None:
    """Record the line of every value and report duplicate keys (before construction).

    Raises :class:`_TooBigError` for nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_VALUES`
    values after alias expansion, or an alias that contains itself.
    """
    count = [0] if count is None else count
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise _TooBigError(f"more than {MAX_VALUES:,} values once YAML aliases (*name) are expanded; "
                      "a scenario holds a few hundred")
    if depth > MAX_DEPTH:
        raise _TooBigError(f"nested more than {MAX_DEPTH} levels deep at {_fmt_path(path[:6])}...; "
                      "a scenario needs about 8")
    if id(node) in ancestors:
        raise _TooBigError(f"a YAML alias refers to a value that contains it ({_fmt_path(path) or 'top level'})")
    marks[path] = Loc(file, node.start_mark.line + 1)
    inner = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                issues.append(Issue(file, line, _fmt_path((*path, key)), NO_VALUE,
                                    f"duplicate key {key!r} (first given on line {seen[key]}); give each key once"))
            else:
                seen[key] = line
            _walk_nodes(value_node, (*path, key), file, marks, issues, depth + 1, inner, count)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_nodes(item, (*path, i), file, marks, issues, depth + 1, inner, count)


def _check_depth(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the event stream, before the (recursive) composer."""
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise _TooBigError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1}); "
                                       "a scenario needs about 8")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    finally:
        loader.dispose()


def _read_text(path: Path) -> str:
    """The file's text: at most :data:`MAX_FILE_BYTES`, UTF-8, no NUL bytes (else a ScenarioError)."""
    file = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, "is a directory, not a YAML file")]) from None
    except OSError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"cannot read file: {exc}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError([Issue(file, None, "", NO_VALUE,
                                   f"file is larger than {MAX_FILE_BYTES // 2**20} MiB: not a scenario file "
                                   "(they are a few kilobytes); check the path")])
    if b"\0" in raw:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, "not a text file (it contains NUL bytes): "
                                   "a scenario is a YAML text file")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"not UTF-8 text (byte {exc.start}: "
                                   f"{exc.reason}); save the file as UTF-8")]) from None


def load_yaml(path: Path, issues: list[Issue] | None = None) -> tuple[Any, dict[PathT, Loc]]:
    """Parse one YAML file; return the data and the location of every value in it.

    Duplicate keys are appended to ``issues`` (the last value wins meanwhile, so validation can
    still report everything else); without ``issues`` they raise at once.
    """
    return _parse_yaml(_read_text(path), str(path), issues)


def _parse_yaml(text: str, file: str, issues: list[Issue] | None = None) -> tuple[Any, dict[PathT, Loc]]:
    """:func:`load_yaml` on text: safe tags only, bounded depth and size, every failure a ScenarioError."""
    loader: _Loader | None = None
    try:
        _check_depth(text)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return {}, {(): Loc(file, 1)}
        marks: dict[PathT, Loc] = {}
        dups: list[Issue] = []
        _walk_nodes(node, (), file, marks, dups)
        if dups and issues is None:
            raise ScenarioError(dups)
        if issues is not None:
            issues += dups
        return loader.construct_document(node), marks
    except ScenarioError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ScenarioError([Issue(file, line, "", NO_VALUE, f"malformed YAML: {what}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"malformed YAML: {exc}")]) from None
    except RecursionError:
        raise ScenarioError([Issue(file, None, "", NO_VALUE,
                                   f"nested too deeply (more than {MAX_DEPTH} levels); a scenario needs about 8")]) \
            from None
    except _TooBigError as exc:
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"refused: {exc}")]) from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer with thousands of digits
        raise ScenarioError([Issue(file, None, "", NO_VALUE, f"unreadable value: {exc}")]) from None
    finally:
        if loader is not None:
            loader.dispose()


# --------------------------------------------------------------------------- extends and --set


def _fmt_path(path: Iterable[str | int]) -> str:
    return ".".join(str(p) for p in path)


def _deep_merge(base: Any, child: Any, path: PathT, replaced: list[PathT]) -> Any:
    """Child over base: mappings merge key by key, anything else (lists too) replaces."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for k, v in child.items():
            if v is None:  # null: "not given" - drops what the base file set (e.g. one of its policies)
                out.pop(k, None)
                replaced.append((*path, k))
            else:
                out[k] = _deep_merge(base[k], v, (*path, k), replaced) if k in base else v
        return out
    replaced.append(path)
    return child


def _under(path: PathT, prefix: PathT) -> bool:
    return path[: len(prefix)] == prefix


def _resolve_file(path: Path, chain: tuple[Path, ...],
                  issues: list[Issue]) -> tuple[dict[str, Any], dict[PathT, Loc]]:
    data, marks = load_yaml(path, issues)
    if not isinstance(data, dict):
        raise ScenarioError([Issue(str(path), 1, "", data, "a scenario must be a mapping (key: value lines)")])
    if "extends" not in data:
        return data, marks
    ext = data.pop("extends")
    ext_loc = marks.get(("extends",), Loc(str(path), None))
    marks = {p: m for p, m in marks.items() if not _under(p, ("extends",))}
    if not isinstance(ext, str) or not ext:
        raise ScenarioError([Issue(ext_loc.file, ext_loc.line, "extends", ext,
                                   "must be the path of another scenario file, relative to this one")])
    base_path = (path.parent / ext).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ScenarioError([Issue(ext_loc.file, ext_loc.line, "extends", ext,
                                   "circular extends: " + " -> ".join(str(p) for p in (*chain, path, base_path)))])
    if not base_path.is_file():
        raise ScenarioError([Issue(ext_loc.file, ext_loc.line, "extends", ext, f"file not found: {base_path}")])
    base, base_marks = _resolve_file(base_path, (*chain, path.resolve()), issues)
    replaced: list[PathT] = []
    merged = _deep_merge(base, data, (), replaced)
    kept = {p: m for p, m in base_marks.items() if not any(_under(p, r) for r in replaced)}
    kept.update(marks)
    return merged, kept


def _list_index(items: list[Any], seg: str) -> int | None:
    """A list position from ``seg``: an integer index or the ``name`` of a mapping item."""
    if re.fullmatch(r"-?\d+", seg):
        i = int(seg)
        return i if -len(items) <= i < len(items) else None
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == seg:
            return i
    return None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``path=value`` into path segments and the YAML-parsed value."""
    if "=" not in text:
        raise ScenarioError([Issue(SET_SOURCE, None, text, NO_VALUE,
                                   "expected path=value, e.g. market.members.count=200000")])
    path_s, value_s = text.split("=", 1)
    segs = path_s.strip().split(".")
    if not path_s.strip() or any(not s.strip() for s in segs):
        raise ScenarioError([Issue(SET_SOURCE, None, path_s, NO_VALUE,
                                   "bad path: use dotted field names, e.g. policies.new.refund.window_days")])
    try:
        value = _parse_yaml(value_s, SET_SOURCE)[0] if value_s.strip() else None
    except ScenarioError as exc:
        why = exc.issues[0].message if exc.issues else "unreadable"
        raise ScenarioError([Issue(SET_SOURCE, None, path_s, value_s, f"value is not valid YAML: {why}")]) from None
    return [s.strip() for s in segs], value


def apply_override(data: dict[str, Any], marks: dict[PathT, Loc], text: str, value: Any = NO_VALUE) -> None:
    """Apply one ``path=value`` override in place (``value`` given: ``text`` is just the path)."""
    if value is NO_VALUE:
        segs, value = parse_override(text)
        label = f"{SET_SOURCE} {text}"
    else:
        segs = text.split(".")
        label = f"{SET_SOURCE} {text}={_show(value)}"
    cur: Any = data
    path: list[str | int] = []
    for depth, seg in enumerate(segs):
        last = depth == len(segs) - 1
        if isinstance(cur, dict):
            key: str | int = seg
            if not last and (seg not in cur or cur[seg] is None):
                cur[seg] = {}
                marks[(*path, seg)] = Loc(label, None)
        elif isinstance(cur, list):
            idx = _list_index(cur, seg)
            if idx is None:
                names = [str(x.get("name")) for x in cur if isinstance(x, dict) and "name" in x]
                allowed = f"an index 0..{len(cur) - 1}" if cur else "nothing (the list is empty)"
                if names:
                    allowed += " or a name: " + ", ".join(names)
                raise ScenarioError([Issue(label, None, _fmt_path(segs[: depth + 1]), NO_VALUE,
                                           f"bad --set path: no item {seg!r} in this list; allowed: {allowed}")])
            key = idx % len(cur)
        else:
            raise ScenarioError([Issue(label, None, _fmt_path(segs[: depth + 1]), NO_VALUE,
                                       f"bad --set path: {_fmt_path(segs[:depth]) or '(top level)'} is {_show(cur)}, "
                                       "not a mapping or list, so it has no field " + repr(seg))])
        path.append(key)
        if last and value is None and isinstance(cur, dict):
            cur.pop(key, None)  # null: back to "not given"
        elif last:
            cur[key] = copy.deepcopy(value)
        else:
            cur = cur[key]
    tpath = tuple(path)
    for p in [p for p in marks if _under(p, tpath)]:
        del marks[p]
    marks[tpath] = Loc(label, None)


# --------------------------------------------------------------------------- pydantic models


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> AfterValidator:
    """A validator with an analyst-readable message naming the allowed range."""
    if lo is not None and hi is not None:
        text = f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        text = f"must be {'>' if lo_open else '>='} {lo:g}"
    else:
        text = f"must be {'<' if hi_open else '<='} {hi:g}"

    def check(v: float) -> float:
        ok = True
        if lo is not None:
            ok &= v > lo if lo_open else v >= lo
        if hi is not None:
            ok &= v < hi if hi_open else v <= hi
        if not ok:
            raise ValueError(text)
        return v

    return AfterValidator(check)


Prob = Annotated[float, _range(0, 1)]
NonNeg = Annotated[float, _range(0)]
Positive = Annotated[float, _range(0, lo_open=True)]
NonNegInt = Annotated[int, _range(0)]
PosInt = Annotated[int, _range(1)]
MAX_DAYS = 36_500
Days = Annotated[int, _range(0, MAX_DAYS)]
"""A number of days (a window, delay or period): at most 100 years, like the horizon."""
PosDays = Annotated[int, _range(1, MAX_DAYS)]
MAX_CREDITS = 10**9
Credits = Annotated[int, _range(0, MAX_CREDITS)]
"""Credits granted at once (far above any real allotment; keeps the ledger's integers exact)."""
MAX_LOG_SD = 3.0
"""Largest lognormal log-sd ``b`` accepted (larger spreads give absurd, overflowing draws)."""
MAX_COUNT = 10**9
Count = Annotated[int, _range(0, MAX_COUNT)]
PosCount = Annotated[int, _range(1, MAX_COUNT)]
Name = Annotated[str, Field(min_length=1)]
SeatType = Literal[SEAT_TYPES]  # type: ignore[valid-type]
PresetName = Literal[tuple(PRESETS)]  # type: ignore[valid-type]
LaxDate = Annotated[dt.date, Field(strict=False)]


class _Model(BaseModel):
    """Strict base: unknown keys are errors, no silent string-to-number coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    target: ClassVar[type | None] = None


class DistModel(_Model):
    """A distribution; a bare number means ``fixed``."""

    target: ClassVar[type | None] = Dist
    kind: Literal["fixed", "uniform", "beta", "lognormal"] = "fixed"
    a: Annotated[float, _range(-1e6, 1e6)] = 0.0
    b: Annotated[float, _range(-1e6, 1e6)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"kind": "fixed", "a": float(v)}
        if isinstance(v, dict) and "kind" not in v:
            # a partial mapping (e.g. --set ...check_interval_days.a=2 over a default) would silently
            # become fixed(a): ask for the whole distribution instead
            raise ValueError("a distribution needs its kind (fixed, uniform, beta or lognormal): write it whole, "
                             "e.g. {kind: lognormal, a: 4, b: 0.8}, or a bare number for fixed")
        return v

    @model_validator(mode="after")
    def _sane_spread(self) -> DistModel:
        if self.kind == "lognormal" and self.b > MAX_LOG_SD:  # e^(3 x 3 sd) is already a factor of 8,000
            raise ValueError(f"a lognormal's log-sd b must be <= {MAX_LOG_SD:g}, got {self.b:g}")
        return self


class SegmentModel(_Model):
    target: ClassVar[type | None] = Segment
    name: Name
    share: Positive | None = None
    base_response: Annotated[float, _range(0, 1, lo_open=True, hi_open=True)] | None = None
    active_share: Prob | None = None
    check_interval_days: DistModel | None = None
    openness: DistModel | None = None


class MembersModel(_Model):
    target: ClassVar[type | None] = MemberPopulation
    count: PosCount | None = None
    segments: Annotated[list[SegmentModel], Field(min_length=1)] | None = None


class RecruiterGroupModel(_Model):
    target: ClassVar[type | None] = RecruiterGroup
    name: Name
    count: Count
    seat_type: SeatType | None = None
    behaviour: Literal["fixed", "adaptive"] | None = None
    personalization: DistModel | None = None
    targeting_skill: DistModel | None = None
    daily_volume: DistModel | None = None
    bulk_share: DistModel | None = None
    time_budget_minutes: DistModel | None = None
    team_size: PosCount | None = None
    segment_weights: dict[str, NonNeg] | list[NonNeg] | None = None


class ResponseModelModel(_Model):
    target: ClassVar[type | None] = ResponseModel
    personalization_effect: NonNeg | None = None
    reference_personalization: Prob | None = None
    bulk_personalization_factor: Prob | None = None
    member_heterogeneity_sd: NonNeg | None = None
    observation_days: PosDays | None = None


class FatigueModel(_Model):
    target: ClassVar[type | None] = Fatigue
    enabled: bool | None = None
    weight_bulk: NonNeg | None = None
    weight_personalized: NonNeg | None = None
    half_life_days: Positive | None = None
    sensitivity: NonNeg | None = None


class AdaptationModel(_Model):
    target: ClassVar[type | None] = Adaptation
    enabled: bool | None = None
    weight_cost: NonNeg | None = None
    weight_scarcity: NonNeg | None = None
    weight_warning: NonNeg | None = None
    weight_improvement: NonNeg | None = None
    max_personalization_shift: Prob | None = None
    max_volume_cut: Prob | None = None
    speed: Prob | None = None
    memory_days: Annotated[float, _range(1, MAX_DAYS)] | None = None
    cost_reference: Annotated[float, _range(0, 1, hi_open=True)] | None = None


class SendingModelModel(_Model):
    target: ClassVar[type | None] = SendingModel
    minutes_personalized: NonNeg | None = None
    minutes_bulk: NonNeg | None = None
    weekend_factor: Annotated[float, _range(0, 10)] | None = None
    adaptation: AdaptationModel | None = None


class MarketModel(_Model):
    target: ClassVar[type | None] = Market
    members: MembersModel | None = None
    recruiters: list[RecruiterGroupModel] | None = None
    response: ResponseModelModel | None = None
    fatigue: FatigueModel | None = None
    sending: SendingModelModel | None = None


class RefundModel(_Model):
    kind: Literal["on_silence", "on_response", "never"] | None = None
    window_days: Days | None = None
    latency_days: Days | None = None


class AccrualModel(_Model):
    kind: Literal["unlimited", "cap", "expire"] | None = None
    cap_months: Annotated[float, _range(0, 1200)] | None = None
    expire_days: PosDays | None = None


class ThresholdModel(_Model):
    """``on`` / ``off`` or a mapping of threshold fields (a mapping switches it on unless it says otherwise)."""

    enabled: bool | None = None
    min_sends: PosInt | None = None
    window_days: PosDays | None = None
    min_rate: Prob | None = None
    warning_days: Days | None = None
    ack_delay_days: Days | None = None
    improvement_days: PosDays | None = None
    maturity_days: Days | None = None
    review_every_days: PosDays | None = None
    seat_types: list[SeatType] | None = None

    @model_validator(mode="before")
    @classmethod
    def _bool_is_switch(cls, v: Any) -> Any:
        return {"enabled": v} if isinstance(v, bool) else v


class GrantModel(_Model):
    date: LaxDate
    amount: Credits
    seat_types: list[SeatType] | None = None
    name: Name | None = None


class PhaseModel(_Model):
    """Overrides of the credit rules of one phase."""

    refund: RefundModel | None = None
    allotments: dict[SeatType, Credits] | None = None
    accrual: AccrualModel | None = None
    pooling: bool | None = None


class BeforeModel(PhaseModel):
    """The phase before ``switch_date``: a preset's rules (``preset: old_2014``) plus overrides."""

    preset: PresetName | None = None


class PolicyModel(PhaseModel):
    """A named policy: a preset (or nothing = built from scratch) plus overrides."""

    preset: PresetName | None = None
    description: str | None = None
    threshold: ThresholdModel | None = None
    grants: list[GrantModel] | None = None
    switch_date: LaxDate | None = None
    before: BeforeModel | None = None


PolicyName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]


# --------------------------------------------------------------------------- sweep and sensitivity blocks
# Read by ``inmail-sim sweep`` / ``inmail-sim sensitivity`` (simulator/sweep.py, simulator/sensitivity.py),
# ignored by ``run``.  Here only their shape is checked; whether each dotted path and value fits the
# scenario is checked by sweep.py, which applies the values as ``--set`` overrides.


class ParameterRangeModel(_Model):
    """A numeric range of one parameter: ``{low, high}``; ``num`` evenly spaced points for a grid."""

    low: float
    high: float
    num: Annotated[int, _range(2)] | None = None
    integer: bool | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> ParameterRangeModel:
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0, got low={self.low:g}")
        return self


SweepValues = Annotated[list[Any], Field(min_length=1)] | ParameterRangeModel
MetricName = Literal[METRIC_NAMES]  # type: ignore[valid-type]


class SweepModel(_Model):
    """``sweep:``: a grid (lists of values / ``{low, high, num}``) or ``n`` QMC points over ranges."""

    method: Literal["grid", "lhs", "sobol", "halton"] = "grid"
    n: PosInt | None = None
    seed: NonNegInt | None = None
    seeds: Literal["common", "per_point"] = "common"
    replications: Annotated[int, _range(1, 100_000)] | None = None
    metrics: Annotated[list[MetricName], Field(min_length=1)] | None = None
    parameters: Annotated[dict[str, SweepValues], Field(min_length=1)]


class SensitivityModel(_Model):
    """``sensitivity:``: Sobol indices and a tornado chart of chosen outputs over parameter ranges."""

    parameters: Annotated[dict[str, ParameterRangeModel], Field(min_length=1)] | None = None
    outputs: Annotated[list[Name], Field(min_length=1)] | None = None
    policy: Name | None = None
    n: PosInt = 32
    replications: Annotated[int, _range(1, 100_000)] = 2
    bootstrap: Annotated[int, _range(0, 100_000)] = 999
    confidence: Annotated[float, _range(0, 1, lo_open=True, hi_open=True)] = 0.95
    seed: NonNegInt | None = None
    sobol: bool = True
    tornado: bool = True


# --------------------------------------------------------------------------- calibration block
# Read by ``inmail-sim calibrate`` (simulator/calibration.py), ignored by ``run``.  Here only its shape
# is checked; whether each path, metric and label fits the scenario is checked by calibration.py.


class CalibrationParameterModel(_Model):
    """A free parameter: one market path (or several tied ones, ``{path: factor}``) and its range."""

    name: Name | None = None
    path: Name | None = None
    paths: Annotated[list[Name], Field(min_length=1)] | Annotated[dict[str, float], Field(min_length=1)] | None = None
    low: float
    high: float
    start: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationParameterModel:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give either path (one field) or paths (several fields tied to one value)")
        if not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        if self.start is not None and not self.low <= self.start <= self.high:
            raise ValueError(f"start={self.start:g} must lie in [low, high] = [{self.low:g}, {self.high:g}]")
        return self


class CalibrationTargetModel(_Model):
    """A figure to reproduce: a point ``value``, a band ``low``..``high``, or a one-sided bound."""

    name: Name | None = None
    metric: Name
    by: Name | None = None
    label: Name | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    scale: Positive | None = None
    weight: NonNeg = 1.0
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> CalibrationTargetModel:
        if (self.by is None) != (self.label is None):
            raise ValueError("by and label go together (e.g. by: personalization_band, label: high)")
        if self.value is not None and (self.low is not None or self.high is not None):
            raise ValueError("give either value (a point) or low/high (a band or a bound), not both")
        if self.value is None and self.low is None and self.high is None:
            raise ValueError("needs value, or low and/or high")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        return self


class CalibrationCheckModel(_Model):
    """A validation figure NOT used in fitting: a policy comparison predicted by the fitted market."""

    name: Name
    scenario: Name | None = None
    policy: Name | None = None
    metric: Name = "response_rate"
    relative: bool = True
    low: float | None = None
    high: float | None = None
    source: str = ""


class CalibrationModel(_Model):
    """``calibration:``: free market parameters, the figures to reproduce, and validation figures."""

    policy: Name | None = None
    replications: Annotated[int, _range(1, 10_000)] = 4
    check_replications: Annotated[int, _range(2, 10_000)] = 10
    method: Literal["nelder-mead", "powell"] = "nelder-mead"
    max_evaluations: Annotated[int, _range(1, 100_000)] = 80
    tolerance: Positive = 0.002
    regularization: NonNeg = 0.01
    parameters: Annotated[list[CalibrationParameterModel], Field(min_length=1)]
    targets: Annotated[list[CalibrationTargetModel], Field(min_length=1)] | None = None
    validation: list[CalibrationCheckModel] | None = None


class ScenarioModel(_Model):
    """The whole experiment."""

    name: Name | None = None
    description: str = ""
    start_date: LaxDate | None = None
    horizon_days: Annotated[int, _range(1, 36_500)] | None = None
    replications: Annotated[int, _range(1, 100_000)] = 20
    max_replications: Annotated[int, _range(1, 100_000)] = 200
    root_seed: Annotated[int, _range(0)] = 20150201
    baseline: Name | None = None
    market: MarketModel | None = None
    policies: Annotated[dict[PolicyName, PolicyModel], Field(min_length=1)]
    sweep: SweepModel | None = None
    sensitivity: SensitivityModel | None = None
    calibration: CalibrationModel | None = None


# --------------------------------------------------------------------------- pydantic errors -> issues


_TYPE_MESSAGES: dict[str, str] = {
    "finite_number": "must be a finite number (not .nan or .inf)",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false (also on/off, yes/no)",
    "string_type": "must be text",
    "list_type": "must be a list (lines starting with '-')",
    "dict_type": "must be a mapping (key: value lines)",
    "model_type": "must be a mapping (key: value lines)",
    "model_attributes_type": "must be a mapping (key: value lines)",
    "date_type": "must be a date like 2015-02-01",
    "date_parsing": "must be a date like 2015-02-01",
    "date_from_datetime_parsing": "must be a date like 2015-02-01",
    "date_from_datetime_inexact": "must be a date like 2015-02-01 (no time of day)",
    "missing": "required field is missing",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "string_pattern_mismatch": "may contain only letters, digits, '_' and '-'",
}


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``loc`` (for listing allowed keys)."""
    import types
    import typing

    cur: Any = model
    segs = list(loc[:-1])
    i = 0
    for _ in range(200):
        origin = typing.get_origin(cur)
        if isinstance(cur, type) and issubclass(cur, BaseModel):
            if i == len(segs):
                return cur
            info = cur.model_fields.get(str(segs[i]))
            if info is None:
                return None
            cur, i = info.annotation, i + 1
        elif origin is Annotated:
            cur = typing.get_args(cur)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(cur) if a is not type(None)]
            if i < len(segs) and isinstance(segs[i], str) and "[" in segs[i]:
                i += 1  # a union branch tag such as 'list[...]'
            cur = args[0]
        elif origin is dict and i < len(segs):
            cur, i = typing.get_args(cur)[1], i + 1
        elif origin is list and i < len(segs):
            cur, i = typing.get_args(cur)[0], i + 1
        else:
            return None
    return None


def _child(cur: Any, seg: str | int) -> Any:
    """``cur[seg]`` for a mapping key or an in-range list index, else ``NO_VALUE``."""
    if isinstance(cur, dict) and seg in cur:
        return cur[seg]
    if isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
        return cur[seg]
    return NO_VALUE


def _clean_loc(data: Any, loc: Sequence[str | int]) -> tuple[PathT, Any]:
    """Drop pydantic-internal segments (union tags, '[key]'); return the data path and its value."""
    path: list[str | int] = []
    cur = data
    for i, seg in enumerate(loc):
        last = i == len(loc) - 1
        if _child(cur, seg) is not NO_VALUE:
            path.append(seg)
            cur = _child(cur, seg)
        elif last and isinstance(seg, str) and not seg.startswith(("[", "function")) and "[" not in seg:
            path.append(seg)
            cur = NO_VALUE
    return tuple(path), cur


def _named_path(data: Any, path: PathT) -> str:
    """Dotted path using an item's ``name`` instead of its list index when it has one."""
    out: list[str] = []
    cur = data
    for seg in path:
        if isinstance(cur, list) and isinstance(seg, int) and 0 <= seg < len(cur):
            item = cur[seg]
            name = item.get("name") if isinstance(item, dict) else None
            out.append(str(name) if isinstance(name, str) and name and _list_index(cur, name) == seg else str(seg))
            cur = item
        elif isinstance(cur, dict) and seg in cur:
            out.append(str(seg))
            cur = cur[seg]
        else:
            out.append(str(seg))
            cur = None
    return ".".join(out)


def _locate(marks: Mapping[PathT, Loc], path: PathT, default_file: str | None) -> Loc:
    for n in range(len(path), -1, -1):
        loc = marks.get(path[:n])
        if loc is not None:
            return loc
    return Loc(default_file or "<scenario>", None)


def _issue(data: Any, marks: Mapping[PathT, Loc], file: str | None, path: PathT, value: Any, msg: str) -> Issue:
    loc = _locate(marks, path, file)
    return Issue(loc.file, loc.line, _named_path(data, path), value, msg)


def _suggest(word: str, allowed: Sequence[str]) -> str | None:
    """The allowed name a typo most likely meant (shared prefix first, then similarity)."""
    close = difflib.get_close_matches(word, allowed, n=4, cutoff=0.6)
    if not close:
        return None
    return max(close, key=lambda c: (c[:3] == word[:3], -close.index(c)))


def _pydantic_issues(exc: ValidationError, data: Any, marks: Mapping[PathT, Loc], file: str | None) -> list[Issue]:
    raw: list[tuple[PathT, Any, str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path, value = _clean_loc(data, loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            holder = _model_at(ScenarioModel, loc)
            allowed = [f for f in holder.model_fields if f != "target"] if holder else []
            msg = "unknown field"
            close = _suggest(str(path[-1]) if path else "", allowed)
            if close:
                msg += f"; did you mean {close!r}?"
            if allowed:
                msg += ("" if close else ".") + " Allowed: " + ", ".join(allowed)
        elif etype == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            choices = re.findall(r"'([^']*)'", str(expected))
            msg = "must be one of: " + ", ".join(choices) if choices else err["msg"]
            if "[key]" in loc:
                msg = "unknown name; " + msg
                value = path[-1] if path else value
        elif etype == "value_error":
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
        else:
            msg = _TYPE_MESSAGES.get(etype, err["msg"])
            if etype == "missing":
                value = NO_VALUE
        raw.append((path, value, msg, etype))
    # A union (e.g. a dict-or-list field) reports one error per branch: keep the informative ones.
    deeper = {p[:n] for p, *_ in raw for n in range(len(p))}
    kept: dict[tuple[PathT, str], tuple[PathT, Any, str]] = {}
    for path, value, msg, etype in raw:
        is_type = etype.endswith("_type")
        if is_type and path in deeper:
            continue
        if is_type and any(p == path and not t.endswith("_type") for p, _, _, t in raw):
            continue
        kept.setdefault((path, msg), (path, value, msg))
    return [_issue(data, marks, file, p, v, m) for p, v, m in kept.values()]


# --------------------------------------------------------------------------- models -> config objects


class _BuildError(Exception):
    """A conversion step failed; its issues were already recorded."""


@dataclass
class _Builder:
    data: dict[str, Any]
    marks: Mapping[PathT, Loc]
    file: str | None
    issues: list[Issue] = field(default_factory=list)

    def fail(self, path: PathT, value: Any, msg: str) -> None:
        self.issues.append(_issue(self.data, self.marks, self.file, path, value, msg))

    def construct(self, make: Callable[[], Any], path: PathT, given: Mapping[str, Any]) -> Any:
        """Call ``make``; a ``ValueError('field: msg')`` from a config object becomes an issue."""
        try:
            return make()
        except (ValueError, TypeError) as exc:
            text = str(exc)
            fld, sep, msg = text.partition(": ")
            if not sep or " " in fld:
                fld, msg = "", text
            sub = self._resolve_field(path, fld)
            value = self._value_at(sub) if fld else NO_VALUE
            if value is NO_VALUE and fld in given:
                value = given[fld]
            self.fail(sub, value, msg)
            raise _BuildError from None

    def _resolve_field(self, path: PathT, fld: str) -> PathT:
        """``recruiters.bulk.segment_weights`` -> the data path (names resolved to list indexes)."""
        out = list(path)
        cur = self._value_at(path)
        for seg in [s for s in fld.split(".") if s]:
            if isinstance(cur, list):
                idx = _list_index(cur, seg)
                if idx is None:
                    out.append(seg)
                    cur = None
                    continue
                out.append(idx)
                cur = cur[idx]
            else:
                out.append(seg)
                cur = cur.get(seg) if isinstance(cur, dict) else None
        return tuple(out)

    def _value_at(self, path: PathT) -> Any:
        cur: Any = self.data
        for seg in path:
            cur = _child(cur, seg)
            if cur is NO_VALUE:
                return NO_VALUE
        return cur

    # ----------------------------------------------------------------- generic models

    def generic(self, model: _Model, path: PathT, **extra: Any) -> Any:
        """Build ``model.target`` from the fields the scenario gave (the rest keep their defaults)."""
        kwargs: dict[str, Any] = {}
        failed = False
        for name in model.model_fields_set:
            value = getattr(model, name)
            if value is None:
                continue
            try:
                kwargs[name] = self.convert(value, (*path, name))
            except _BuildError:
                failed = True
        kwargs.update(extra)
        if failed:
            raise _BuildError
        assert model.target is not None
        target = model.target
        return self.construct(lambda: target(**kwargs), path, kwargs)

    def convert(self, value: Any, path: PathT) -> Any:
        if isinstance(value, _Model) and value.target is not None:
            return self.generic(value, path)
        if isinstance(value, list):
            out, failed = [], False
            for i, item in enumerate(value):
                try:
                    out.append(self.convert(item, (*path, i)))
                except _BuildError:
                    failed = True
            if failed:
                raise _BuildError
            return tuple(out)
        return value

    # ----------------------------------------------------------------- market

    def market(self, m: MarketModel | None) -> Market:
        if m is None:
            return Market()
        path: PathT = ("market",)
        kwargs: dict[str, Any] = {}
        failed = False
        for name in ("members", "response", "fatigue", "sending"):
            sub = getattr(m, name)
            if sub is not None:
                try:
                    kwargs[name] = self.generic(sub, (*path, name))
                except _BuildError:
                    failed = True
        if m.recruiters is not None:
            seg_names = [s.name for s in kwargs["members"].segments] if "members" in kwargs else None
            groups = []
            for i, g in enumerate(m.recruiters):
                gpath = (*path, "recruiters", i)
                try:
                    extra = {}
                    if isinstance(g.segment_weights, dict):
                        extra["segment_weights"] = self._weights_by_name(g.segment_weights, seg_names, gpath)
                    elif isinstance(g.segment_weights, list):
                        extra["segment_weights"] = tuple(g.segment_weights)
                    g2 = g.model_copy(update={"segment_weights": None})
                    groups.append(self.generic(g2, gpath, **extra))
                except _BuildError:
                    failed = True
            kwargs["recruiters"] = tuple(groups)
        if failed:
            raise _BuildError
        return self.construct(lambda: Market(**kwargs), path, kwargs)

    def _weights_by_name(self, w: dict[str, float], seg_names: list[str] | None, gpath: PathT) -> tuple[float, ...]:
        names = seg_names if seg_names is not None else [s.name for s in MemberPopulation().segments]
        bad = [k for k in w if k not in names]
        for k in bad:
            self.fail((*gpath, "segment_weights", k), k, "unknown segment; allowed: " + ", ".join(names))
        if bad:
            raise _BuildError
        return tuple(float(w.get(n, 0.0)) for n in names)

    # ----------------------------------------------------------------- policies

    def phase(self, base: Phase, m: PhaseModel, path: PathT) -> Phase:
        changes: dict[str, Any] = {}
        failed = False
        if m.refund is not None:
            r = m.refund.model_dump(exclude_none=True)
            try:
                changes["refund"] = self.construct(lambda: replace(base.refund, **r), (*path, "refund"), r)
            except _BuildError:
                failed = True
        if m.accrual is not None:
            a = m.accrual.model_dump(exclude_none=True)
            try:
                changes["accrual"] = self.construct(lambda: replace(base.accrual, **a), (*path, "accrual"), a)
            except _BuildError:
                failed = True
        if m.allotments is not None:
            allot = dict(base.allotments) | m.allotments
            changes["allotments"] = tuple((s, int(allot[s])) for s in SEAT_TYPES if s in allot)
        if m.pooling is not None:
            changes["pooling"] = m.pooling
        if failed:
            raise _BuildError
        return self.construct(lambda: replace(base, **changes), path, changes)

    def policy(self, name: str, m: PolicyModel) -> Policy:
        path: PathT = ("policies", name)
        base = preset(m.preset) if m.preset else Policy(name=name, phase=Phase(), description="built from scratch")
        notes = [(rule, "set in the scenario") for rule in _overridden_rules(m)]
        failed = False
        phase, threshold, before = base.phase, base.threshold, base.before
        try:
            phase = self.phase(base.phase, m, path)
        except _BuildError:
            failed = True
        if m.threshold is not None:
            t = {"enabled": True} | m.threshold.model_dump(exclude_none=True)
            if "seat_types" in t:
                t["seat_types"] = tuple(t["seat_types"])
            try:
                threshold = self.construct(lambda: replace(base.threshold, **t), (*path, "threshold"), t)
            except _BuildError:
                failed = True
        grants = base.grants
        if m.grants is not None:
            try:
                grants = self.convert_grants(m.grants, (*path, "grants"))
            except _BuildError:
                failed = True
        if m.before is not None:
            b0 = preset(m.before.preset).phase if m.before.preset else (base.before or Phase())
            try:
                before = self.phase(b0, m.before, (*path, "before"))
            except _BuildError:
                failed = True
        if failed:
            raise _BuildError
        switch = m.switch_date if m.switch_date is not None else base.switch_date
        fields = {"name": name, "phase": phase, "threshold": threshold, "grants": grants, "switch_date": switch,
                  "before": before, "description": m.description if m.description is not None else base.description,
                  "sources": base.sources + tuple(notes)}
        return self.construct(lambda: Policy(**fields), path, fields)

    def convert_grants(self, grants: list[GrantModel], path: PathT) -> tuple[Grant, ...]:
        out, failed = [], False
        for i, g in enumerate(grants):
            kw = g.model_dump(exclude_none=True)
            if "seat_types" in kw:
                kw["seat_types"] = tuple(kw["seat_types"])
            try:
                out.append(self.construct(lambda kw=kw: Grant(**kw), (*path, i), kw))
            except _BuildError:
                failed = True
        if failed:
            raise _BuildError
        return tuple(out)


def _overridden_rules(m: PolicyModel) -> list[str]:
    rules: list[str] = []
    for key in ("refund", "accrual", "threshold"):
        sub = getattr(m, key)
        if sub is not None:
            rules += [f"{key}.{f}" for f in sorted(sub.model_fields_set)]
    if m.allotments:
        rules += [f"allotments.{s}" for s in m.allotments]
    for key in ("pooling", "grants", "switch_date", "before"):
        if getattr(m, key) is not None:
            rules.append(key)
    return rules


# --------------------------------------------------------------------------- the scenario


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
    locations: Mapping[PathT, Loc] = field(default_factory=dict, repr=False, compare=False)
    """Where each value of ``resolved`` came from (file and line, or ``--set``)."""

    def issue(self, path: PathT, message: str, value: Any = NO_VALUE) -> Issue:
        """An :class:`Issue` at ``path`` of ``resolved``, located at its file and line (for sweep.py)."""
        return _issue(self.resolved, self.locations, self.source, path, value, message)

    @property
    def policy_names(self) -> list[str]:
        """Baseline first, then the others in file order."""
        return [self.baseline] + [p for p in self.policies if p != self.baseline]

    def resolved_yaml(self) -> str:
        """The scenario after ``extends`` and overrides, as YAML (what ``scenario.resolved.yaml`` holds)."""
        return yaml.safe_dump(self.resolved, sort_keys=False, allow_unicode=True, width=100)


def scenario_yaml(data: Mapping[str, Any], header: str = "") -> str:
    """A scenario mapping as YAML text, ``header`` lines as comments on top (for generated scenario files)."""
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return lines + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100)


Overrides = Sequence[str] | Mapping[str, Any]


def load_scenario(source: str | Path | Mapping[str, Any], overrides: Overrides = ()) -> Scenario:
    """Load, merge, override and validate a scenario; raise :class:`ScenarioError` listing every problem.

    ``source`` is a YAML file path or an already-parsed mapping (e.g. from a notebook).
    ``overrides`` are ``"path=value"`` strings (value parsed as YAML) or a ``{path: value}`` mapping.
    """
    dup_issues: list[Issue] = []
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
        data, marks = _resolve_file(path, (), dup_issues)
    set_issues: list[Issue] = []
    items = overrides.items() if isinstance(overrides, Mapping) else ((o, NO_VALUE) for o in overrides)
    for text, value in items:
        try:
            apply_override(data, marks, text, value)
        except ScenarioError as exc:
            set_issues += exc.issues
    if set_issues:
        raise ScenarioError(dup_issues + set_issues)
    try:
        scenario = _validate(data, marks, file, tuple(_override_text(overrides)))
    except ScenarioError as exc:
        raise ScenarioError(dup_issues + exc.issues) from None
    if dup_issues:
        raise ScenarioError(dup_issues)
    return scenario


def _override_text(overrides: Overrides) -> list[str]:
    if isinstance(overrides, Mapping):
        return [f"{k}={_show(v, 1000)}" for k, v in overrides.items()]
    return list(overrides)


def _validate(data: dict[str, Any], marks: Mapping[PathT, Loc], file: str | None,
              overrides: tuple[str, ...]) -> Scenario:
    try:
        model = ScenarioModel.model_validate(data)
    except ValidationError as exc:
        issues = _pydantic_issues(exc, data, marks, file)
        raise ScenarioError(issues + _build_clean_sections(data, marks, file, exc)) from None
    b = _Builder(data, marks, file)
    baseline = model.baseline if model.baseline is not None else next(iter(model.policies))
    if baseline not in model.policies:
        b.fail(("baseline",), baseline, "must name one of the policies: " + ", ".join(model.policies))
    market: Market | None = None
    with contextlib.suppress(_BuildError):
        market = b.market(model.market)
    policies: dict[str, Policy] = {}
    for name, pm in model.policies.items():
        with contextlib.suppress(_BuildError):
            policies[name] = b.policy(name, pm)
    run_kw: dict[str, Any] = {}
    if model.start_date is not None:
        run_kw["start_date"] = model.start_date
    if model.horizon_days is not None:
        run_kw["horizon_days"] = model.horizon_days
    run = RunConfig(**run_kw)
    try:  # the calendar (with the refund tail and next month's grant) must stay within Python's dates
        run.start_date + dt.timedelta(days=run.horizon_days + 400)
    except OverflowError:
        b.fail(("start_date",), run.start_date.isoformat(),
               f"start_date + horizon_days ({run.horizon_days}) runs past the last representable date (9999-12-31)")
    if model.max_replications < model.replications:
        b.fail(("max_replications",), model.max_replications,
               f"must be >= replications ({model.replications})")
    if b.issues:
        raise ScenarioError(b.issues)
    assert market is not None
    resolved = copy.deepcopy(data)
    resolved.setdefault("name", model.name or (Path(file).stem if file else "scenario"))
    resolved.setdefault("baseline", baseline)
    return Scenario(
        name=model.name or (Path(file).stem if file else "scenario"),
        description=model.description, market=market, policies=policies, baseline=baseline, run=run,
        replications=model.replications, max_replications=model.max_replications, root_seed=model.root_seed,
        resolved=resolved, source=file, overrides=overrides, locations=dict(marks),
    )


def _build_clean_sections(data: dict[str, Any], marks: Mapping[PathT, Loc], file: str | None,
                          exc: ValidationError) -> list[Issue]:
    """Build the market and the policies that passed validation, to report their problems too."""
    bad = {tuple(e["loc"][:2]) for e in exc.errors()} | {tuple(e["loc"][:1]) for e in exc.errors()}
    b = _Builder(data, marks, file)
    if ("market",) not in bad and isinstance(data.get("market"), dict):
        with contextlib.suppress(_BuildError, ValidationError):
            b.market(MarketModel.model_validate(data["market"]))
    policies = data.get("policies")
    if isinstance(policies, dict):
        for name, entry in policies.items():
            if ("policies", name) not in bad and isinstance(name, str):
                with contextlib.suppress(_BuildError, ValidationError):
                    b.policy(name, PolicyModel.model_validate(entry))
    return b.issues


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
    if changes.get("max_replications", scenario.max_replications) < changes.get("replications",
                                                                                   scenario.replications):
        changes["max_replications"] = resolved["max_replications"] = changes.get("replications",
                                                                                 scenario.replications)
    return replace(scenario, resolved=resolved, **changes)


# --------------------------------------------------------------------------- helpers for tests / quick looks


def shrink_overrides(source: str | Path | Mapping[str, Any], *, members: int = 2000, recruiters: int = 60,
                     horizon_days: int = 60, replications: int = 2) -> list[str]:
    """``--set`` strings that make a scenario small and fast, keeping its shape.

    Recruiter groups are scaled to about ``recruiters`` in total (a non-empty group keeps at least
    one recruiter, so a rare bulk-heavy group does not vanish); members, horizon and replications
    are set outright.
    """
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        data, _ = _resolve_file(Path(source), (), [])
    out = [f"market.members.count={members}", f"horizon_days={horizon_days}",
           f"replications={replications}", f"max_replications={max(replications, 2)}"]
    groups = (data.get("market") or {}).get("recruiters")
    if isinstance(groups, list) and groups:
        counts = [int(g.get("count", 0)) if isinstance(g, dict) else 0 for g in groups]
        total = sum(counts) or 1
        for i, (g, c) in enumerate(zip(groups, counts, strict=True)):
            new = max(1, round(c * recruiters / total)) if c > 0 else 0
            key = g.get("name") if isinstance(g, dict) and isinstance(g.get("name"), str) else i
            out.append(f"market.recruiters.{key}.count={new}")
    return out
