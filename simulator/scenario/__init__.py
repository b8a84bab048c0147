"""Scenario layer: YAML in, validated frozen config out (loading, ``extends:``, ``--set`` overrides, schema).

The names other layers use are re-exported here, so that they do not depend on how the layer is split
into modules.
"""

from simulator.scenario.loading import (
    MAX_FILE_BYTES,
    NO_VALUE,
    Issue,
    Overrides,
    PathT,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_yaml,
    shrink_overrides,
    with_changes,
)

__all__ = [
    "MAX_FILE_BYTES",
    "NO_VALUE",
    "Issue",
    "Overrides",
    "PathT",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "scenario_yaml",
    "shrink_overrides",
    "with_changes",
]
