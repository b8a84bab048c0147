"""Hostile and absurd scenario files: every one ends in exit code 2 with a message, never a traceback or code.

A corpus of broken files (wrong types, negative counts, rates > 1, NaN/inf, empty, binary, 10 MB,
deeply nested, alias bombs, python tags) run through ``validate`` and ``run``, and hypothesis
fuzzing of the loader with random YAML structures, random text and random ``--set`` overrides:
the loader returns a :class:`Scenario` or raises :class:`ScenarioError`, nothing else.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenario import MAX_FILE_BYTES, Scenario, ScenarioError, load_scenario
from simulator.scenario.memory import estimate

from .helpers import cli, tiny, write_yaml

MARKER = Path(tempfile.gettempdir()) / "inmail-sim-pwned-marker"
OK = "policies: {a: {preset: old_2014}}\n"


def _bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + OK


CORPUS: dict[str, tuple[str | bytes, str]] = {
    "empty": ("", "policies: required field is missing"),
    "only_comment": ("# nothing here\n", "policies: required field is missing"),
    "a_list": ("- a\n- b\n", "a scenario must be a mapping"),
    "a_number": ("42\n", "a scenario must be a mapping"),
    "wrong_types": ("name: [1, 2]\nreplications: {a: 1}\npolicies: [a, b]\n", "replications = {a: 1}: must be a whole"),
    "text_for_number": ("horizon_days: '365'\n" + OK, "horizon_days = '365': must be a whole number"),
    "bool_for_number": ("replications: true\n" + OK, "replications = true: must be a whole number"),
    "negative_count": ("market: {members: {count: -5}, recruiters: [{name: a, count: -3}]}\n" + OK,
                       "market.recruiters.a.count = -3: must be in [0, 1e+09]"),
    "zero_members": ("market: {members: {count: 0}}\n" + OK, "market.members.count = 0: must be in [1, 1e+09]"),
    "absurd_window": ("policies: {a: {preset: old_2014, refund: {window_days: 100000000}}}\n",
                      "window_days = 100000000: must be in [0, 36500]"),
    "absurd_spread": ("market: {recruiters: [{name: g, count: 2, daily_volume: {kind: lognormal, a: 5, b: 50}}]}\n"
                      + OK, "log-sd b must be <= 3"),
    "rate_above_one": ("market: {members: {segments: [{name: s, share: 1, active_share: 1.5}]}}\n" + OK,
                       "active_share = 1.5: must be in [0, 1]"),
    "threshold_rate": ("policies: {a: {preset: old_2014, threshold: {min_rate: 13}}}\n",
                       "policies.a.threshold.min_rate = 13: must be in [0, 1]"),
    "nan": ("market: {response: {personalization_effect: .nan}}\n" + OK, "must be a finite number"),
    "inf": ("policies: {a: {preset: old_2014, accrual: {kind: cap, cap_months: .inf}}}\n",
            "cap_months = inf: must be a finite number"),
    "negative_inf": ("market: {fatigue: {half_life_days: -.inf}}\n" + OK, "must be a finite number"),
    "nan_in_distribution": ("market: {recruiters: [{name: g, count: 2, daily_volume: {kind: fixed, a: .nan}}]}\n"
                            + OK, "must be a finite number"),
    "huge_integer": ("root_seed: 1" + "0" * 5000 + "\n" + OK, "unreadable value"),
    "replications_absurd": ("replications: 10000000000\n" + OK, "replications = 10000000000: must be in"),
    "date_overflow": ("start_date: 9999-06-01\n" + OK, "runs past the last representable date"),
    "impossible_date": ("start_date: 2015-02-30\n" + OK, "must be a date like 2015-02-01"),
    "binary": (bytes(range(256)) * 40, "not a text file (it contains NUL bytes)"),
    "not_utf8": ("name: caf\xe9\n".encode("latin-1") + OK.encode(), "not UTF-8 text"),
    "control_character": ("name: a\x07b\n" + OK, "malformed YAML"),
    "ten_megabytes": ("description: '" + "x" * (10 * 2**20) + "'\n" + OK, "file is larger than 1 MiB"),
    "deeply_nested_flow": ("policies: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 40 levels deep"),
    "deeply_nested_block": ("".join("  " * i + f"k{i}:\n" for i in range(60)) + OK, "nested more than 40 levels"),
    "alias_bomb": (_bomb(), "more than 100,000 values once YAML aliases"),
    "recursive_alias": ("a: &a [*a]\n" + OK, "a YAML alias refers to a value that contains it"),
    "python_object": ("!!python/object/apply:os.system ['touch " + str(MARKER) + "']\n",
                      "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply"),
    "python_object_in_field": ("name: !!python/object/apply:os.system ['touch " + str(MARKER) + "']\n" + OK,
                               "could not determine a constructor"),
    "python_name": ("name: !!python/name:os.system\n" + OK, "could not determine a constructor"),
    "custom_tag": ("name: !include /etc/passwd\n" + OK, "could not determine a constructor for the tag '!include'"),
    "list_as_key": ("? [a, b]\n: 1\n" + OK, "a key must be a plain name"),
    "two_documents": ("name: a\n---\nname: b\n", "expected a single document"),
    "merge_of_a_scalar": ("policies: {a: {<<: 3, preset: old_2014}}\n", "malformed YAML"),
    "tab_indent": ("policies:\n\ta: {preset: old_2014}\n", "malformed YAML"),
    "unknown_preset": ("policies: {a: {preset: new_2016}}\n", "must be one of: old_2014"),
    "unknown_seat_type": ("policies: {a: {preset: old_2014, allotments: {recruitr: 5}}}\n", "unknown name"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_files_exit_2_with_a_message(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = CORPUS[case]
    f = tmp_path / f"{case}.yaml"
    if isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content, encoding="utf-8")
    MARKER.unlink(missing_ok=True)
    for argv in (["validate", str(f)], ["run", str(f), "--out", str(tmp_path / "out")]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv[0], err)
        assert expected in err, err
        assert str(f) in err
        assert "Traceback" not in out + err and "unexpected error" not in err
    assert not (tmp_path / "out").exists()
    assert not MARKER.exists(), "a YAML tag ran code"


def test_a_device_or_endless_file_is_not_read_to_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    code, _, err = cli(capsys, "validate", "/dev/zero")
    assert code == 2 and "larger than" in err


def test_the_size_limit_is_far_above_real_scenarios() -> None:
    biggest = max(p.stat().st_size for p in (Path(__file__).parents[2] / "scenarios").glob("*.yaml"))
    assert biggest * 20 < MAX_FILE_BYTES


def test_scenarios_too_big_for_memory_are_refused_up_front(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    f = write_yaml(tmp_path / "big.yaml", tiny())
    monkeypatch.setenv("INMAIL_SIM_MEMORY_LIMIT", "64M")
    code, _, err = cli(capsys, "run", str(f), "--out", str(tmp_path / "o"), "--set", "market.members.count=2000000")
    assert code == 2 and "scenario too large for this machine" in err and "2,000,000 members" in err
    assert "the limit is 64 MiB (INMAIL_SIM_MEMORY_LIMIT=64M)" in err and not (tmp_path / "o").exists()
    code, _, err = cli(capsys, "run", str(f), "--out", str(tmp_path / "o"), "--workers", "2", "-q",
                       "--set", "market.members.count=2000000", "--memory-limit", "100G", "--set", "horizon_days=2",
                       "-n", "1")
    assert code == 0, err  # --memory-limit overrides the environment
    monkeypatch.delenv("INMAIL_SIM_MEMORY_LIMIT")
    code, _, err = cli(capsys, "run", str(f), "--out", str(tmp_path / "p"), "--set", "market.members.count=1000000000",
                       "--set", "market.recruiters.corporate.count=100000", "--set", "horizon_days=36500")
    assert code == 2 and "MemAvailable" in err and not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- fuzzing


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.dates(),
    st.sampled_from(["old_2014", "new_2015", "on_silence", "expire", "recruiter", "beta", "fixed", "off", ""]),
)
KEYS = ["name", "count", "share", "kind", "a", "b", "preset", "refund", "window_days", "market", "members",
        "recruiters", "segments", "policies", "threshold", "allotments", "extends", "<<", "baseline"]
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                                  inner, max_size=4),
    max_leaves=16,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


TINY_PATHS = _paths(tiny())


def _load(text: str | bytes) -> Scenario | None:
    """Load ``text`` as a scenario file: a Scenario, or None for a ScenarioError; anything else fails."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "fuzz.yaml"
        f.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            assert exc.issues and all(i.message for i in exc.issues)
            exc.render()
            return None
    estimate(sc)  # a valid scenario can be sized
    return sc


FUZZ = settings(max_examples=int(os.environ.get("INMAIL_SIM_FUZZ_EXAMPLES", "80")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
"""``INMAIL_SIM_FUZZ_EXAMPLES=5000 pytest tests/reliability -k fuzz`` for a longer hunt."""


@FUZZ
@given(structures)
def test_fuzz_whole_documents(doc: Any) -> None:
    _load(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.sampled_from(TINY_PATHS), structures)
def test_fuzz_one_field_of_a_valid_scenario(path: tuple[Any, ...], value: Any) -> None:
    data = copy.deepcopy(tiny())
    cur: Any = data
    for seg in path[:-1]:
        cur = cur[seg]
    cur[path[-1]] = value
    _load(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(st.text(max_size=300))
def test_fuzz_raw_text(text: str) -> None:
    _load(text)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(data: bytes) -> None:
    _load(data)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from([".".join(map(str, p)) for p in TINY_PATHS]) | st.text(max_size=15),
                          st.text(max_size=30) | structures.map(lambda v: yaml.safe_dump(v).strip())),
                max_size=3))
def test_fuzz_set_overrides(overrides: list[tuple[str, str]]) -> None:
    try:
        load_scenario(tiny(), [f"{p}={v}" for p, v in overrides])
    except ScenarioError as exc:
        assert exc.issues


def test_a_fuzzed_valid_scenario_runs_one_short_replication() -> None:
    """The loader's output is always runnable: a scenario the fuzzers could produce, run for a few days."""
    data = tiny(horizon_days=3, start_date=dt.date(2015, 1, 30))
    data["market"]["members"]["count"] = 1
    data["policies"]["new"]["threshold"] = {"min_sends": 1, "window_days": 1}
    from simulator.experiments.experiment import run_experiment

    res = run_experiment(load_scenario(data), replications=1)
    assert not res.summary.isna().any().any()
