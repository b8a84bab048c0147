"""Scenario loading: YAML with lines, extends, --set, validation, conversion to config objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from scenario_helpers import SCENARIOS, tiny, write_yaml

from simulator.core import config as c
from simulator.core.presets import preset
from simulator.scenario import Issue, ScenarioError, load_scenario, schema, shrink_overrides


def issues_of(source: object, overrides: object = ()) -> list[Issue]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(source, overrides)  # type: ignore[arg-type]
    return info.value.issues


# --------------------------------------------------------------------------- valid input


def test_main_scenario_builds_config_objects() -> None:
    sc = load_scenario(SCENARIOS / "old_vs_new.yaml")
    assert sc.name == "old_vs_new" and sc.baseline == "old"
    assert sc.policy_names == ["old", "new"]
    assert isinstance(sc.market, c.Market) and sc.market.recruiter_count == 1000
    assert sc.run == c.RunConfig(start_date=dt.date(2015, 2, 1), horizon_days=365)
    # a preset without overrides is the preset (apart from its name and description)
    new = sc.policies["new"]
    ref = preset("new_2015")
    assert (new.phase, new.threshold, new.grants, new.switch_date) == (ref.phase, ref.threshold, ref.grants, None)
    bulk = next(g for g in sc.market.recruiters if g.name == "bulk_heavy")
    assert bulk.count / sc.market.recruiter_count < 0.02  # "fewer than 2%" (POLICY_FACTS 3)
    assert bulk.time_budget_minutes == c.Dist("fixed", 120.0, 0.0)  # a bare number is a fixed Dist


def test_policy_overrides_merge_into_the_preset() -> None:
    data = tiny(policies={
        "old": {"preset": "old_2014"},
        "new": {"preset": "new_2015", "threshold": False, "refund": {"window_days": 60},
                "allotments": {"recruiter": 100}, "accrual": {"kind": "cap", "cap_months": 3}},
    })
    p = load_scenario(data).policies["new"]
    ref = preset("new_2015")
    assert p.threshold.enabled is False and p.threshold.min_rate == ref.threshold.min_rate
    assert p.phase.refund == c.RefundRule("on_response", 60, ref.phase.refund.latency_days)
    assert p.phase.allotment("recruiter") == 100
    rps = "recruiter_professional_services"
    assert p.phase.allotment(rps) == ref.phase.allotment(rps)
    assert p.phase.accrual == c.Accrual("cap", 3.0, ref.phase.accrual.expire_days)
    assert p.phase.pooling is True
    assert ("refund.window_days", "set in the scenario") in p.sources


@pytest.mark.parametrize(("text", "enabled", "min_rate"), [
    ("off", False, 0.13), ("on", True, 0.13), ("{min_rate: 0.2}", True, 0.2),
    ("{enabled: false, min_rate: 0.2}", False, 0.2),
    ("{seat_types: [recruiter_lite]}", True, 0.13),
])
def test_threshold_off_on_or_mapping(tmp_path: Path, text: str, enabled: bool, min_rate: float) -> None:
    body = f"""
name: t
policies:
  p: {{preset: pre_threshold_2014, threshold: {text}}}
"""
    p = load_scenario(write_yaml(tmp_path / "t.yaml", body)).policies["p"]
    assert (p.threshold.enabled, p.threshold.min_rate) == (enabled, min_rate)


def test_switch_with_before_preset_and_policy_from_scratch() -> None:
    data = tiny(policies={
        "old": {"preset": "old_2014"},
        "sw": {"preset": "new_2015", "switch_date": "2015-03-01",
               "before": {"preset": "old_2014", "refund": {"window_days": 10}}},
        "scratch": {"refund": {"kind": "never"}, "allotments": {"recruiter": 80}, "threshold": False,
                    "grants": [{"date": "2015-02-10", "amount": 5}]},
    })
    sc = load_scenario(data)
    sw = sc.policies["sw"]
    assert sw.switch_date == dt.date(2015, 3, 1)
    assert sw.before == dataclasses.replace(preset("old_2014").phase,
                                            refund=c.RefundRule("on_silence", 10, 0))
    scratch = sc.policies["scratch"]
    assert scratch.phase.refund.kind == "never" and scratch.phase.allotment("recruiter") == 80
    assert scratch.phase.allotment("recruiter_lite") == 0
    assert scratch.grants == (c.Grant(dt.date(2015, 2, 10), 5),)


def test_segment_weights_by_name_or_list() -> None:
    data = tiny()
    data["market"]["recruiters"][0]["segment_weights"] = {"b": 2}
    data["market"]["recruiters"][1]["segment_weights"] = [1, 3]
    groups = load_scenario(data).market.recruiters
    assert groups[0].segment_weights == (0.0, 2.0)
    assert groups[1].segment_weights == (1.0, 3.0)


def test_set_overrides_paths_names_indexes_and_yaml_values() -> None:
    sc = load_scenario(tiny(), [
        "market.members.count=2000",
        "market.recruiters.bulk.count=5",           # list item by name
        "market.recruiters.0.team_size=2",          # ... or by index
        "policies.new.refund.window_days=60",       # a field the file never mentioned
        "policies.new.threshold=off",
        "market.recruiters.lite.daily_volume={kind: uniform, a: 1, b: 3}",
        "start_date=2015-03-01",
    ])
    assert sc.market.members.count == 2000
    assert [g.count for g in sc.market.recruiters] == [24, 8, 5]
    assert sc.market.recruiters[0].team_size == 2
    assert sc.policies["new"].phase.refund.window_days == 60
    assert sc.policies["new"].threshold.enabled is False
    assert sc.market.recruiters[1].daily_volume == c.Dist("uniform", 1.0, 3.0)
    assert sc.run.start_date == dt.date(2015, 3, 1)
    assert "market.members.count=2000" in sc.overrides
    assert sc.resolved["market"]["members"]["count"] == 2000


def test_mapping_overrides_and_null_removes() -> None:
    sc = load_scenario(tiny(), {"policies.new": None, "replications": 5})
    assert list(sc.policies) == ["old"] and sc.replications == 5


def test_extends_merges_mappings_replaces_lists_and_null_drops(tmp_path: Path) -> None:
    write_yaml(tmp_path / "base.yaml", tiny())
    child = write_yaml(tmp_path / "child.yaml", """
extends: base.yaml
name: child
market:
  members: {count: 900}
  recruiters:
    - {name: only, count: 3}
policies:
  new: null
  other: {preset: pre_threshold_2014}
""")
    sc = load_scenario(child)
    assert sc.name == "child"
    assert sc.market.members.count == 900
    assert [seg.name for seg in sc.market.members.segments] == ["a", "b"]  # merged from the base
    assert [g.name for g in sc.market.recruiters] == ["only"]              # list replaced
    assert list(sc.policies) == ["old", "other"]
    assert "extends" not in sc.resolved


def test_resolved_yaml_round_trips(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "transition_2015.yaml", ["replications=4"])
    again = load_scenario(write_yaml(tmp_path / "r.yaml", sc.resolved_yaml()))
    assert again.market == sc.market and again.policies == sc.policies and again.run == sc.run
    assert again.replications == 4 and again.root_seed == sc.root_seed


def test_schemas_mirror_config_dataclasses() -> None:
    """A field added to a config dataclass must be added to its scenario schema too."""
    mirrored = (schema.DistSchema, schema.SegmentSchema, schema.MembersSchema, schema.RecruiterGroupSchema,
                schema.ResponseModelSchema, schema.FatigueSchema, schema.AdaptationSchema, schema.SendingModelSchema,
                schema.MarketSchema)
    for model in mirrored:
        assert model.target is not None
        assert {f.name for f in dataclasses.fields(model.target)} == set(model.model_fields), model.__name__
    by_hand = ((schema.RefundSchema, c.RefundRule), (schema.AccrualSchema, c.Accrual),
               (schema.ThresholdSchema, c.Threshold), (schema.GrantSchema, c.Grant), (schema.PhaseSchema, c.Phase))
    for model, target in by_hand:
        assert {f.name for f in dataclasses.fields(target)} == set(model.model_fields), model.__name__
    policy_fields = {f.name for f in dataclasses.fields(c.Policy)} - {"name", "phase", "sources"}
    assert policy_fields <= set(schema.PolicySchema.model_fields)


def test_shrink_overrides_keep_every_group() -> None:
    sets = shrink_overrides(SCENARIOS / "old_vs_new.yaml", members=2000, recruiters=60)
    sc = load_scenario(SCENARIOS / "old_vs_new.yaml", sets)
    assert sc.market.members.count == 2000 and sc.replications == 2
    assert all(g.count >= 1 for g in sc.market.recruiters)
    assert 55 <= sc.market.recruiter_count <= 70


# --------------------------------------------------------------------------- bad input


def test_typo_is_caught_with_line_and_suggestion(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", "name: t\nreplicatons: 3\npolicies:\n  a: {preset: old_2014}\n")
    (issue,) = issues_of(f)
    assert (issue.file, issue.line, issue.path, issue.value) == (str(f), 2, "replicatons", 3)
    assert "unknown field" in issue.message and "'replications'" in issue.message
    assert "root_seed" in issue.message  # lists what is allowed


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", "name: t\npolicies:\n  a: {preset: old_2014\nroot_seed: 3\n")
    (issue,) = issues_of(f)
    assert issue.file == str(f) and issue.line is not None and issue.line >= 3
    assert issue.message.startswith("malformed YAML")


def test_duplicate_key_is_an_error_reported_with_the_rest(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", "name: t\nroot_seed: 1\nroot_seed: 2\nhorizon_days: 0\n"
                                        "policies:\n  a: {preset: old_2014}\n")
    issues = issues_of(f)
    assert [(i.line, i.path) for i in issues] == [(3, "root_seed"), (4, "horizon_days")]
    assert "duplicate key" in issues[0].message and "line 2" in issues[0].message
    assert issues[1].message == "must be in [1, 36500]"


def test_every_error_at_once_with_paths_values_and_allowed(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", """name: t
market:
  members:
    count: lots
    segments:
      - {name: a, base_response: 1.5}
  recruiters:
    - {name: g, count: 3, seat_type: recruitr, behaviour: adaptive}
policies:
  a: {preset: old_2015, refund: {window_days: -1}}
""")
    got = {(i.line, i.path, str(i.value)): i.message for i in issues_of(f)}
    assert got[(4, "market.members.count", "lots")] == "must be a whole number"
    assert got[(6, "market.members.segments.a.base_response", "1.5")] == "must be in (0, 1)"
    assert got[(8, "market.recruiters.g.seat_type", "recruitr")].startswith("must be one of: recruiter, ")
    assert got[(10, "policies.a.preset", "old_2015")].startswith("must be one of: old_2014, new_2015")
    assert got[(10, "policies.a.refund.window_days", "-1")] == "must be in [0, 36500]"


def test_config_object_errors_are_mapped_to_paths(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", """name: t
market:
  members:
    segments: [{name: a}, {name: b}]
  recruiters:
    - name: g
      count: 3
      daily_volume: {kind: uniform, a: 5, b: 1}
policies:
  a: {preset: new_2015, switch_date: 2015-03-01}
""")
    got = {(i.line, i.path): i.message for i in issues_of(f)}
    assert got[(8, "market.recruiters.g.daily_volume.b")] == "uniform needs a <= b, got a=5.0, b=1.0"
    assert "give both or neither" in got[(10, "policies.a.switch_date")]
    data = tiny()
    data["market"]["recruiters"][2]["segment_weights"] = [1, 2, 3]
    (issue,) = issues_of(data)
    assert issue.path == "market.recruiters.bulk.segment_weights" and "one weight per segment" in issue.message


def test_config_error_names_its_field() -> None:
    """Config objects say which field is wrong (the scenario layer maps it to a YAML line)."""
    with pytest.raises(c.ConfigError) as info:
        c.Dist("uniform", 5.0, 1.0)
    assert (info.value.field, info.value.message) == ("b", "uniform needs a <= b, got a=5.0, b=1.0")
    assert isinstance(info.value, ValueError) and str(info.value) == "b: uniform needs a <= b, got a=5.0, b=1.0"


def test_missing_field_and_baseline_and_empty_policies(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", "name: t\nmarket:\n  recruiters:\n    - {name: g}\npolicies: {}\n")
    got = {i.path: i.message for i in issues_of(f)}
    assert got["market.recruiters.g.count"] == "required field is missing"
    assert got["policies"] == "must not be empty"
    issues = issues_of(tiny(baseline="nope"))
    assert issues[0].path == "baseline" and "old, new" in issues[0].message


def test_wrong_types_are_not_coerced() -> None:
    data = tiny(replications="3", root_seed=1.5)
    data["market"]["members"]["count"] = True
    got = {i.path: i.message for i in issues_of(data)}
    assert got == {"replications": "must be a whole number", "root_seed": "must be a whole number",
                   "market.members.count": "must be a whole number"}


def test_missing_file_and_missing_extends(tmp_path: Path) -> None:
    (issue,) = issues_of(tmp_path / "nope.yaml")
    assert issue.message == "file not found"
    f = write_yaml(tmp_path / "t.yaml", "extends: base.yaml\nname: t\n")
    (issue,) = issues_of(f)
    assert (issue.line, issue.path) == (1, "extends") and "file not found" in issue.message


def test_circular_extends(tmp_path: Path) -> None:
    write_yaml(tmp_path / "a.yaml", "extends: b.yaml\n")
    write_yaml(tmp_path / "b.yaml", "extends: a.yaml\n")
    (issue,) = issues_of(tmp_path / "a.yaml")
    assert "circular extends" in issue.message


def test_errors_in_a_base_file_point_into_the_base(tmp_path: Path) -> None:
    base = write_yaml(tmp_path / "base.yaml", "name: b\nhorizon_days: -5\npolicies:\n  a: {preset: old_2014}\n")
    child = write_yaml(tmp_path / "child.yaml", "extends: base.yaml\nroot_seed: -1\n")
    got = {(i.file, i.line, i.path) for i in issues_of(child)}
    assert got == {(str(base.resolve()), 2, "horizon_days"), (str(child), 2, "root_seed")}


@pytest.mark.parametrize(("override", "fragment"), [
    ("nonsense", "expected path=value"),
    ("market..count=3", "bad path"),
    ("market.members.count.x=1", "not a mapping or list"),
    ("market.recruiters.nobody.count=1", "no item 'nobody'"),
    ("market.recruiters.9.count=1", "an index 0..2 or a name: corporate, lite, bulk"),
    ("market.membrs.count=5", "unknown field; did you mean 'members'?"),
    ("market.members.count=[1", "not valid YAML"),
])
def test_bad_set_paths(override: str, fragment: str) -> None:
    (issue,) = issues_of(tiny(), [override])
    assert fragment in issue.render()
    assert issue.file is not None and issue.file.startswith("--set")


def test_issue_rendering() -> None:
    issue = Issue("x.yaml", 3, "market.members.count", "lots", "must be a whole number")
    assert issue.render() == "x.yaml:3: market.members.count = 'lots': must be a whole number"
    err = ScenarioError([issue, issue])
    assert str(err).splitlines()[0] == "invalid scenario: 2 problems"
