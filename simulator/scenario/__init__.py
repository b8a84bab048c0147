"""Scenario layer: YAML in, validated frozen config out.

Modules: ``errors`` (Issue, ScenarioError), ``locations`` (where a value came from), ``files``
(safe YAML with line numbers, ``extends:``), ``overrides`` (``--set``), ``schema_fields`` /
``schema`` / ``experiment_schema`` (the pydantic schema), ``schema_issues`` (its errors as issues),
``build`` (schema -> config objects), ``loading`` (Scenario, load_scenario), ``memory`` (the
up-front memory check); ``uncertain`` (priors, uncertain parameters, a world's market), ``decision``
(requirements), ``uncertain_schema`` / ``uncertain_build`` / ``market_paths`` (the ``uncertain:``,
``decision:`` and ``worlds:`` blocks checked and built).

The names other layers use are re-exported here, so that they do not depend on how the layer is split
into modules.
"""

from simulator.scenario.decision import Requirement, satisfices
from simulator.scenario.errors import NO_VALUE, Issue, PathT, ScenarioError
from simulator.scenario.files import MAX_FILE_BYTES
from simulator.scenario.loading import Scenario, load_scenario, scenario_yaml, shrink_overrides, with_changes
from simulator.scenario.overrides import Overrides
from simulator.scenario.uncertain import Prior, UncertainParameter, world_market

__all__ = [
    "MAX_FILE_BYTES",
    "NO_VALUE",
    "Issue",
    "Overrides",
    "PathT",
    "Prior",
    "Requirement",
    "Scenario",
    "ScenarioError",
    "UncertainParameter",
    "load_scenario",
    "satisfices",
    "scenario_yaml",
    "shrink_overrides",
    "with_changes",
    "world_market",
]
