"""Validated schema -> the frozen config objects of :mod:`simulator.core.config`.

Fields the scenario does not give keep the preset's or the config class's default.  The config
objects check their own invariants and raise :class:`~simulator.core.config.ConfigError` naming the
field; the builder turns that into an issue at the field's YAML line.  Every section is built even
after a failure elsewhere, so that all problems are reported together.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from simulator.core.config import (
    SEAT_TYPES,
    ConfigError,
    Grant,
    Market,
    MemberPopulation,
    Phase,
    Policy,
)
from simulator.core.presets import preset
from simulator.scenario.errors import NO_VALUE, Issue, PathT
from simulator.scenario.locations import Loc, issue_at, list_index, value_at
from simulator.scenario.schema import GrantSchema, MarketSchema, PhaseSchema, PolicySchema
from simulator.scenario.schema_fields import StrictSchema

Built = TypeVar("Built")


class BuildError(Exception):
    """A conversion step failed; its issues were already recorded."""


@dataclass
class ConfigBuilder:
    """Builds config objects from schemas of ``data``, collecting every problem in ``issues``."""

    data: dict[str, Any]
    marks: Mapping[PathT, Loc]
    file: str | None
    issues: list[Issue] = field(default_factory=list)

    def fail(self, path: PathT, value: Any, message: str) -> None:
        """Record an issue at ``path`` of the data."""
        self.issues.append(issue_at(self.data, self.marks, self.file, path, value, message))

    def construct(self, make: Callable[[], Built], path: PathT, given: Mapping[str, Any]) -> Built:
        """Call ``make``; a config object's :class:`ConfigError` becomes an issue at its field.

        ``given`` holds the arguments passed, to show the value of a field the data does not hold.
        """
        try:
            return make()
        except ConfigError as exc:
            field_name, message = exc.field, exc.message
        except (ValueError, TypeError) as exc:
            field_name, message = "", str(exc)
        field_path = self._field_path(path, field_name)
        value = value_at(self.data, field_path) if field_name else NO_VALUE
        if value is NO_VALUE and field_name in given:
            value = given[field_name]
        self.fail(field_path, value, message)
        raise BuildError from None

    def _field_path(self, path: PathT, field_name: str) -> PathT:
        """``recruiters.bulk.segment_weights`` -> the data path (names resolved to list indexes)."""
        out = list(path)
        current = value_at(self.data, path)
        for segment in [part for part in field_name.split(".") if part]:
            if isinstance(current, list):
                index = list_index(current, segment)
                if index is None:
                    out.append(segment)
                    current = None
                    continue
                out.append(index)
                current = current[index]
            else:
                out.append(segment)
                current = current.get(segment) if isinstance(current, dict) else None
        return tuple(out)

    # ----------------------------------------------------------------- schemas that mirror a config class

    def mirrored(self, schema: StrictSchema, path: PathT, **extra: Any) -> Any:
        """Build ``schema.target`` from the fields the scenario gave (the rest keep their defaults)."""
        kwargs: dict[str, Any] = {}
        failed = False
        for name in schema.model_fields_set:
            value = getattr(schema, name)
            if value is None:
                continue
            try:
                kwargs[name] = self.convert(value, (*path, name))
            except BuildError:
                failed = True
        kwargs.update(extra)
        if failed:
            raise BuildError
        target = schema.target
        assert target is not None
        return self.construct(lambda: target(**kwargs), path, kwargs)

    def convert(self, value: Any, path: PathT) -> Any:
        """A field's value: a mirrored schema built, a list as a tuple, anything else as it is."""
        if isinstance(value, StrictSchema) and value.target is not None:
            return self.mirrored(value, path)
        if isinstance(value, list):
            out, failed = [], False
            for index, item in enumerate(value):
                try:
                    out.append(self.convert(item, (*path, index)))
                except BuildError:
                    failed = True
            if failed:
                raise BuildError
            return tuple(out)
        return value

    # ----------------------------------------------------------------- market

    def market(self, schema: MarketSchema | None) -> Market:
        """The market; segment weights given by segment name become one weight per segment."""
        if schema is None:
            return Market()
        path: PathT = ("market",)
        kwargs: dict[str, Any] = {}
        failed = False
        for name in ("members", "response", "fatigue", "sending", "platform_targeting"):
            section = getattr(schema, name)
            if section is not None:
                try:
                    kwargs[name] = self.mirrored(section, (*path, name))
                except BuildError:
                    failed = True
        if schema.recruiters is not None:
            segment_names = [segment.name for segment in kwargs["members"].segments] if "members" in kwargs else None
            groups = []
            for index, group in enumerate(schema.recruiters):
                group_path = (*path, "recruiters", index)
                try:
                    extra = {}
                    if isinstance(group.segment_weights, dict):
                        extra["segment_weights"] = self._weights_by_name(group.segment_weights, segment_names,
                                                                         group_path)
                    elif isinstance(group.segment_weights, list):
                        extra["segment_weights"] = tuple(group.segment_weights)
                    without_weights = group.model_copy(update={"segment_weights": None})
                    groups.append(self.mirrored(without_weights, group_path, **extra))
                except BuildError:
                    failed = True
            kwargs["recruiters"] = tuple(groups)
        if failed:
            raise BuildError
        return self.construct(lambda: Market(**kwargs), path, kwargs)

    def _weights_by_name(self, weights: dict[str, float], segment_names: list[str] | None,
                         group_path: PathT) -> tuple[float, ...]:
        """One weight per segment, in segment order, from ``{segment name: weight}`` (absent: 0)."""
        names = segment_names
        if names is None:  # no members: section, so the default population's segments
            names = [segment.name for segment in MemberPopulation().segments]
        unknown = [name for name in weights if name not in names]
        for name in unknown:
            self.fail((*group_path, "segment_weights", name), name, "unknown segment; allowed: " + ", ".join(names))
        if unknown:
            raise BuildError
        return tuple(float(weights.get(name, 0.0)) for name in names)

    # ----------------------------------------------------------------- policies

    def phase(self, base: Phase, schema: PhaseSchema, path: PathT) -> Phase:
        """``base`` with the credit rules the scenario overrides."""
        changes: dict[str, Any] = {}
        failed = False
        if schema.refund is not None:
            refund = schema.refund.model_dump(exclude_none=True)
            try:
                changes["refund"] = self.construct(lambda: replace(base.refund, **refund), (*path, "refund"), refund)
            except BuildError:
                failed = True
        if schema.accrual is not None:
            accrual = schema.accrual.model_dump(exclude_none=True)
            try:
                changes["accrual"] = self.construct(lambda: replace(base.accrual, **accrual), (*path, "accrual"),
                                                    accrual)
            except BuildError:
                failed = True
        if schema.allotments is not None:
            allotments = dict(base.allotments) | schema.allotments
            changes["allotments"] = tuple((seat, int(allotments[seat])) for seat in SEAT_TYPES if seat in allotments)
        if schema.pooling is not None:
            changes["pooling"] = schema.pooling
        if failed:
            raise BuildError
        return self.construct(lambda: replace(base, **changes), path, changes)

    def policy(self, name: str, schema: PolicySchema) -> Policy:
        """A preset (or a policy from scratch) with the scenario's overrides, noted in its sources."""
        path: PathT = ("policies", name)
        base = preset(schema.preset) if schema.preset else Policy(name=name, phase=Phase(),
                                                                  description="built from scratch")
        notes = [(rule, "set in the scenario") for rule in _overridden_rules(schema)]
        failed = False
        phase, threshold, before = base.phase, base.threshold, base.before
        try:
            phase = self.phase(base.phase, schema, path)
        except BuildError:
            failed = True
        if schema.threshold is not None:
            changes = {"enabled": True} | schema.threshold.model_dump(exclude_none=True)
            if "seat_types" in changes:
                changes["seat_types"] = tuple(changes["seat_types"])
            try:
                threshold = self.construct(lambda: replace(base.threshold, **changes), (*path, "threshold"), changes)
            except BuildError:
                failed = True
        grants = base.grants
        if schema.grants is not None:
            try:
                grants = self.grants(schema.grants, (*path, "grants"))
            except BuildError:
                failed = True
        if schema.before is not None:
            before_base = preset(schema.before.preset).phase if schema.before.preset else (base.before or Phase())
            try:
                before = self.phase(before_base, schema.before, (*path, "before"))
            except BuildError:
                failed = True
        if failed:
            raise BuildError
        switch_date = schema.switch_date if schema.switch_date is not None else base.switch_date
        description = schema.description if schema.description is not None else base.description
        sources = base.sources + tuple(notes)
        given = {"name": name, "phase": phase, "threshold": threshold, "grants": grants, "switch_date": switch_date,
                 "before": before, "description": description, "sources": sources}
        return self.construct(lambda: Policy(name=name, phase=phase, threshold=threshold, grants=grants,
                                             switch_date=switch_date, before=before, description=description,
                                             sources=sources), path, given)

    def grants(self, schemas: list[GrantSchema], path: PathT) -> tuple[Grant, ...]:
        """The one-off grants, each checked on its own."""
        out, failed = [], False
        for index, schema in enumerate(schemas):
            kwargs = schema.model_dump(exclude_none=True)
            if "seat_types" in kwargs:
                kwargs["seat_types"] = tuple(kwargs["seat_types"])
            try:
                out.append(self.construct(functools.partial(Grant, **kwargs), (*path, index), kwargs))
            except BuildError:
                failed = True
        if failed:
            raise BuildError
        return tuple(out)


def _overridden_rules(schema: PolicySchema) -> list[str]:
    """The credit rules a policy entry sets over its preset (recorded in the policy's sources)."""
    rules: list[str] = []
    for key in ("refund", "accrual", "threshold"):
        section = getattr(schema, key)
        if section is not None:
            rules += [f"{key}.{name}" for name in sorted(section.model_fields_set)]
    if schema.allotments:
        rules += [f"allotments.{seat}" for seat in schema.allotments]
    for key in ("pooling", "grants", "switch_date", "before"):
        if getattr(schema, key) is not None:
            rules.append(key)
    return rules
