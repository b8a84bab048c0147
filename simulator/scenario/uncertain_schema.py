"""Schema of the ``uncertain:``, ``decision:`` and ``worlds:`` blocks of a scenario.

``inmail-sim run`` ignores them; studies across plausible worlds read them.  Here only their shape is
checked (a prior's parameters, one of ``path`` / ``paths``, a requirement's operator); whether each path
names a continuous market field and the prior stays inside the field's allowed range is checked when
the scenario is built (:mod:`.uncertain_build`), against the scenario's own market.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from simulator.core.limits import MAX_LOG_SD
from simulator.scenario.decision import COMPARISONS, parse_requirement
from simulator.scenario.errors import SAFE_NAME_PATTERN
from simulator.scenario.schema_fields import Finite, Name, StrictSchema
from simulator.scenario.uncertain import PRIOR_KINDS

if TYPE_CHECKING:  # the type checker cannot read Literal[...] built from a tuple at run time
    PriorKindName = str
    Operator = str
else:
    PriorKindName = Literal[PRIOR_KINDS]
    Operator = Literal[tuple(COMPARISONS)]

ParameterName = Annotated[str, Field(pattern=SAFE_NAME_PATTERN)]
"""An uncertain parameter's name: a column of worlds.csv and posterior.csv, so a safe name."""


class PriorSchema(StrictSchema):
    """``{kind, a, b}`` plus optional truncation ``low`` / ``high`` (see :class:`~.uncertain.Prior`)."""

    kind: PriorKindName
    a: Finite
    b: Finite
    low: Finite | None = None
    high: Finite | None = None

    @model_validator(mode="after")
    def _parameters(self) -> PriorSchema:
        a, b = self.a, self.b
        if self.kind in ("uniform", "loguniform") and not a < b:
            raise ValueError(f"a {self.kind} prior is the range [a, b]: needs a < b, got a={a:g}, b={b:g}")
        if self.kind == "loguniform" and not a > 0:
            raise ValueError(f"a loguniform prior needs a > 0, got a={a:g}")
        if self.kind == "beta" and not (0 < a < 1 and b > 0):
            raise ValueError(f"a beta prior is {{a: mean in (0, 1), b: concentration > 0}}, got a={a:g}, b={b:g}")
        if self.kind == "lognormal":
            if not (a > 0 and 0 < b <= MAX_LOG_SD):
                raise ValueError(f"a lognormal prior is {{a: median > 0, b: log-sd in (0, {MAX_LOG_SD:g}]}}, "
                                 f"got a={a:g}, b={b:g}")
            if self.low is None or self.high is None:
                raise ValueError("a lognormal prior reaches to 0 and to infinity: give low and high too (the "
                                 "range you believe possible, inside the field's allowed range), e.g. "
                                 "{kind: lognormal, a: 1.0, b: 0.2, low: 0.6, high: 1.6}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"needs low < high, got low={self.low:g}, high={self.high:g}")
        return self


class UncertainParameterSchema(StrictSchema):
    """One assumption: ``path`` (one field) or ``paths`` (a scaled group), a prior and the reason for it.

    ``paths: {path: factor}`` sets each field to value x factor; ``relative: true`` with ``path:`` or a
    list ``paths: [...]`` takes each field's value in the scenario as its factor (the value is a multiplier).
    """

    path: Name | None = None
    paths: Annotated[dict[str, Finite], Field(min_length=1)] | Annotated[list[Name], Field(min_length=1)] | None = None
    relative: bool = False
    prior: PriorSchema
    reason: Annotated[str, Field(min_length=1)]

    @model_validator(mode="after")
    def _one_form(self) -> UncertainParameterSchema:
        if (self.path is None) == (self.paths is None):
            raise ValueError("give either path (one field) or paths (a group of fields set together)")
        if isinstance(self.paths, list) and not self.relative:
            raise ValueError("a list of paths needs relative: true (the value multiplies each field's value in the "
                             "scenario); or give paths as {path: factor}")
        if isinstance(self.paths, dict) and self.relative:
            raise ValueError("relative: true takes each field's value as its factor: give paths as a list, not "
                             "{path: factor}")
        return self


class RequirementSchema(StrictSchema):
    """``{metric, op, bound}``, or the text ``"metric op bound"`` (read into the same fields)."""

    metric: Name
    op: Operator
    bound: Finite

    @model_validator(mode="before")
    @classmethod
    def _text_form(cls, given: Any) -> Any:
        if isinstance(given, str):
            requirement = parse_requirement(given)  # its ValueError names the allowed form
            return {"metric": requirement.metric, "op": requirement.op, "bound": requirement.bound}
        if not isinstance(given, dict):
            raise ValueError("a requirement is the text 'metric op number' (e.g. 'response_rate >= 0.20') or "
                             "a mapping {metric, op, bound}")
        return given


class DecisionSchema(StrictSchema):
    """``decision:``: what a policy must achieve (``"response_rate >= 0.20"`` or ``{metric, op, bound}``)."""

    requirements: Annotated[list[RequirementSchema], Field(min_length=1)]


UncertainBlock = dict[ParameterName, UncertainParameterSchema]
WorldsKey = Annotated[str, Field(min_length=1)]
