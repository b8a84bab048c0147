"""Hostile ``uncertain:``, ``decision:`` and ``worlds:`` blocks: every one exits 2 with file, line, field path
and what is allowed - never a traceback.

A corpus of broken blocks through ``validate`` (in this process, fast), all of them at once through the
real command line (``python -m simulator validate FILE``), ``--set`` on the blocks, and hypothesis fuzzing
of the blocks: the loader returns a :class:`Scenario` or raises :class:`ScenarioError`, nothing else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.scenario import Scenario, ScenarioError, load_scenario

from .helpers import ROOT, cli, tiny, write_yaml

PE = "market.response.personalization_effect"
OK_PRIOR = "{kind: uniform, a: 0.5, b: 2}"


def block(entry: str, name: str = "x") -> str:
    """An ``uncertain:`` block with one parameter, ``entry`` being its body lines (indented 4)."""
    return f"uncertain:\n  {name}:\n" + "".join(f"    {line}\n" for line in entry.strip().splitlines())


def one(path: str = PE, prior: str = OK_PRIOR, extra: str = "") -> str:
    return block(f"path: {path}\nprior: {prior}\nreason: r\n{extra}")


# name -> (the blocks' YAML, text the message must contain, the line it must name)
CORPUS: dict[str, tuple[str, str, int]] = {
    "unknown_path": (one("market.response.personalisation_effect"),
                     "uncertain.x.path = 'market.response.personalisation_effect': market.response has no field "
                     "'personalisation_effect'; allowed: personalization_effect, reference_personalization", 3),
    "unknown_segment": (one("market.members.segments.zz.base_response"),
                        "market.members.segments has no item 'zz'; allowed: a, b", 3),
    "not_market": (one("horizon_days"), "not a market field", 3),
    "policy_path": (one("policies.new.refund.window_days"), "a policy is what a scenario compares, not an assumption",
                    3),
    "count": (one("market.members.count"), "uncertain.x.path = 'market.members.count': is a whole-number count", 3),
    "switch": (one("market.fatigue.enabled"), "is a switch (true/false), not a number", 3),
    "a_distribution": (one("market.recruiters.corporate.daily_volume"),
                       "is a distribution (lognormal): name one of its numbers", 3),
    "reversed_range": (one(prior="{kind: uniform, a: 2, b: 1}"), "needs a < b, got a=2, b=1", 4),
    "empty_range": (one(prior="{kind: loguniform, a: 1, b: 1}"), "needs a < b, got a=1, b=1", 4),
    "reversed_truncation": (one(prior="{kind: uniform, a: 0.5, b: 2, low: 1.5, high: 1}"),
                            "needs low < high, got low=1.5, high=1", 4),
    "truncation_misses": (one(prior="{kind: uniform, a: 0.5, b: 2, low: 3, high: 4}"),
                          "keep nothing of the uniform prior's probability", 4),
    "truncation_in_a_far_tail": (one(prior="{kind: lognormal, a: 1, b: 0.1, low: 2, high: 3}"),
                                 "keep only 2.1e-12 of the lognormal prior's probability (at least 1e-09)", 4),
    "same_field_twice_in_a_group": (block("paths: {market.members.segments.a.base_response: 0.3, "
                                          "market.members.segments.0.base_response: 0.2}\nprior: "
                                          "{kind: uniform, a: 0.5, b: 1}\nreason: r"),
                                    "market.members.segments.a.base_response is already set by uncertain "
                                    "parameter 'x'", 3),
    "unknown_kind": (one(prior="{kind: normal, a: 1, b: 2}"),
                     "uncertain.x.prior.kind = 'normal': must be one of: uniform, loguniform, beta, lognormal", 4),
    "bad_beta": (one(prior="{kind: beta, a: 1.5, b: 2}"), "a beta prior is {a: mean in (0, 1)", 4),
    "loguniform_at_zero": (one(prior="{kind: loguniform, a: 0, b: 2}"), "a loguniform prior needs a > 0", 4),
    "open_lognormal": (one(prior="{kind: lognormal, a: 1, b: 0.3}"), "give low and high too", 4),
    "nan_in_prior": (one(prior="{kind: uniform, a: .nan, b: 2}"), "must be a finite number", 4),
    "outside_field_range": (one("market.members.segments.a.base_response", "{kind: uniform, a: 0.2, b: 1.4}"),
                            "at the prior's high end (1.4) base_response: must be in (0, 1)", 4),
    "beta_reaches_zero": (one("market.members.segments.a.base_response", "{kind: beta, a: 0.3, b: 10}"),
                          "at the prior's low end (0) base_response: must be in (0, 1)", 4),
    "negative_effect": (one(prior="{kind: uniform, a: -1, b: 2}"),
                        "at the prior's low end (-1) personalization_effect: must be in [0, 100]", 4),
    "factor_zero": (block("paths: {market.fatigue.weight_bulk: 0}\nprior: " + OK_PRIOR + "\nreason: r"),
                    "uncertain.x.paths.market.fatigue.weight_bulk = 0.0: a factor must be a finite number other than 0",
                    3),
    "relative_zero": (block("relative: true\npath: market.recruiters.lite.daily_volume.b\nprior: " + OK_PRIOR
                            + "\nreason: r"), "which is 0 in the scenario", 4),
    "list_without_relative": (block(f"paths: [{PE}]\nprior: {OK_PRIOR}\nreason: r"),
                              "a list of paths needs relative: true", 3),
    "relative_with_factors": (block(f"relative: true\npaths: {{{PE}: 2}}\nprior: {OK_PRIOR}\nreason: r"),
                              "give paths as a list, not {path: factor}", 3),
    "path_and_paths": (block(f"path: {PE}\npaths: {{{PE}: 1}}\nprior: {OK_PRIOR}\nreason: r"),
                       "give either path (one field) or paths", 3),
    "no_reason": (block(f"path: {PE}\nprior: {OK_PRIOR}"), "uncertain.x.reason: required field is missing", 3),
    "empty_reason": (one(extra="").replace("reason: r", "reason: ''"), "uncertain.x.reason = '': must not be empty", 5),
    "unknown_key": (one(extra="rason: typo"), "unknown field; did you mean 'reason'?", 6),
    "reserved_name": (one().replace("  x:", "  weight:"), "a column name of the worlds files; not allowed: world", 3),
    "unsafe_name": (one().replace("  x:", "  'a b':"), "may contain only letters, digits", 3),
    "field_twice": (one() + f"  y:\n    path: {PE}\n    prior: {OK_PRIOR}\n    reason: r\n",
                    f"{PE} is already set by uncertain parameter 'x'", 7),
    "unknown_metric": ("decision:\n  requirements: ['response_rat >= 0.2']\n",
                       "decision.requirements.0 = 'response_rat': unknown metric; allowed: sent, sent_bulk", 2),
    "unknown_metric_mapping": ("decision:\n  requirements:\n    - {metric: burn, op: '<=', bound: 1}\n",
                               "decision.requirements.0.metric = 'burn': unknown metric; allowed: sent", 3),
    "bad_operator": ("decision:\n  requirements: ['response_rate == 0.2']\n",
                     "operator '==' is not allowed; allowed: <=, >=, <, >", 2),
    "bad_operator_mapping": ("decision:\n  requirements:\n    - {metric: sent, op: '=', bound: 1}\n",
                             "decision.requirements.0.op = '=': must be one of: <=, >=, <, >", 3),
    "infinite_bound": ("decision:\n  requirements: ['sent <= inf']\n", "must be a finite number", 2),
    "infinite_bound_mapping": ("decision:\n  requirements:\n    - {metric: sent, op: '<=', bound: .inf}\n",
                               "decision.requirements.0.bound = inf: must be a finite number", 3),
    "a_number_requirement": ("decision:\n  requirements: [5]\n",
                             "decision.requirements.0 = 5: a requirement is the text 'metric op number'", 2),
    "no_requirements": ("decision:\n  requirements: []\n", "decision.requirements = []: must not be empty", 2),
    "worlds_without_uncertain": ("worlds: prior\n", "worlds = 'prior': worlds need an uncertain: block", 1),
    "worlds_with_empty_uncertain": ("uncertain: {}\nworlds: prior\n", "worlds need an uncertain: block", 2),
    "worlds_absolute": (one() + "worlds: /etc/passwd\n", "an absolute path is refused; allowed: 'prior'", 6),
    "worlds_out_of_folder": (one() + "worlds: ../posterior.csv\n", "leads out of the scenario's folder", 6),
    "worlds_folder": (one() + "worlds: sub\n", "is a directory", 6),
}


def scenario_text(blocks: str) -> str:
    """The tiny scenario as YAML with ``blocks`` on top (so their line numbers are known)."""
    return blocks + yaml.safe_dump(tiny(), sort_keys=False)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_broken_blocks_exit_2_naming_file_line_and_field(case: str, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    text, expected, line = CORPUS[case]
    (tmp_path / "sub").mkdir()
    f = write_yaml(tmp_path / "s.yaml", scenario_text(text))
    code, out, err = cli(capsys, "validate", str(f))
    assert code == 2, (case, out, err)
    assert expected in err, err
    assert f"{f}:{line}: " in err, err
    assert "Traceback" not in out + err and "unexpected error" not in err


def test_every_problem_at_once_through_the_real_command_line(tmp_path: Path) -> None:
    """One file with a problem of each kind: one process, every message, exit 2, no traceback."""
    body = block(f"path: market.members.count\nprior: {OK_PRIOR}\nreason: r", "count")
    body += block(f"path: policies.new.refund.window_days\nprior: {OK_PRIOR}\nreason: r", "policy_path").replace(
        "uncertain:\n", "")
    body += block("path: market.members.segments.a.base_response\nprior: {kind: uniform, a: 0.2, b: 1.4}\n"
                  "reason: r", "range").replace("uncertain:\n", "")
    body += "decision:\n  requirements: ['response_rat >= 0.2', 'sent =< 3']\n"
    f = write_yaml(tmp_path / "all.yaml", scenario_text(body))
    done = subprocess.run([sys.executable, "-m", "simulator", "validate", str(f)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    err = done.stderr
    for where, message in [(3, "uncertain.count.path = 'market.members.count': is a whole-number count"),
                           (7, "uncertain.policy_path.path = 'policies.new.refund.window_days': a policy is what"),
                           (12, "uncertain.range.prior = {a: 0.2, b: 1.4, kind: uniform}: at the prior's high end"),
                           (15, "decision.requirements.0 = 'response_rat': unknown metric; allowed: sent"),
                           (15, "decision.requirements.1 = 'sent =< 3': operator '=<' is not allowed")]:
        assert f"{f}:{where}: {message}" in err, err
    assert "Traceback" not in done.stdout + err and "5 problems" in err


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CORPUS))
def test_each_broken_block_through_the_real_command_line(case: str, tmp_path: Path) -> None:
    """Every corpus case in its own ``python -m simulator validate`` process (about 1 s each, so slow)."""
    text, expected, line = CORPUS[case]
    (tmp_path / "sub").mkdir()
    f = write_yaml(tmp_path / "s.yaml", scenario_text(text))
    done = subprocess.run([sys.executable, "-m", "simulator", "validate", str(f)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2, (case, done.stdout, done.stderr)
    assert f"{f}:{line}: " in done.stderr and expected in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_posterior_validates_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The study that reads it checks it; a run (which ignores worlds) and a reloaded run folder still work."""
    f = write_yaml(tmp_path / "s.yaml", scenario_text(one() + "worlds: fits/posterior.csv\n"))
    code, out, err = cli(capsys, "validate", str(f))
    assert code == 0, err
    assert f"worlds: {(tmp_path / 'fits' / 'posterior.csv').resolve()} (not found yet" in out


def test_set_on_the_blocks_is_checked_like_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_yaml(tmp_path / "s.yaml", scenario_text(one()))
    code, out, _ = cli(capsys, "validate", str(f), "--set", "uncertain.x.prior.b=3")
    assert code == 0 and "uncertain: 1 assumption (x)" in out
    for setting, expected in [("uncertain.x.prior.kind=gauss", "--set uncertain.x.prior.kind=gauss: "
                               "uncertain.x.prior.kind = 'gauss': must be one of: uniform"),
                              ("uncertain.x.path=market.members.count", "is a whole-number count"),
                              ("decision.requirements=['sent ~ 3']", "expected 'metric op number'"),
                              ("uncertain=null", "FAIL")]:
        extra = ["--set", "worlds=prior"] if setting == "uncertain=null" else []
        code, _, err = cli(capsys, "validate", str(f), "--set", setting, *extra)
        assert code == 2 and "Traceback" not in err
        if expected != "FAIL":
            assert expected in err, err
        else:
            assert "--set worlds=prior: worlds = 'prior': worlds need an uncertain: block" in err, err


# --------------------------------------------------------------------------- fuzzing

_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**30, 10**30), st.none(),
                     st.booleans(), st.text(max_size=5))
_paths = st.one_of(st.sampled_from([PE, "market.members.count", "market.members.segments.a.base_response",
                                    "market.recruiters.bulk.daily_volume.a", "policies.old", "market", "market.",
                                    "market..x", "market.members.segments.9.share", "market.recruiters.0.name",
                                    "market.members.segments.a.openness.b"]), st.text(max_size=30))
_priors = st.fixed_dictionaries({"kind": st.sampled_from(["uniform", "loguniform", "beta", "lognormal", "x"]),
                                 "a": _numbers, "b": _numbers},
                                optional={"low": _numbers, "high": _numbers})
_entries = st.fixed_dictionaries({"prior": _priors, "reason": st.text(max_size=5)},
                                 optional={"path": _paths, "paths": st.one_of(st.lists(_paths, max_size=3),
                                                                              st.dictionaries(_paths, _numbers,
                                                                                              max_size=3)),
                                           "relative": st.one_of(st.booleans(), _numbers)})
_requirements = st.lists(st.one_of(st.text(max_size=30), st.fixed_dictionaries(
    {"metric": st.sampled_from(["sent", "pending", "x"]), "op": st.sampled_from(["<=", ">", "=", 1]),
     "bound": _numbers})), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uncertain=st.dictionaries(st.sampled_from(["a", "b", "world", "c d"]), _entries, max_size=3),
       decision=st.one_of(st.none(), st.fixed_dictionaries({"requirements": _requirements})),
       worlds=st.one_of(st.none(), st.sampled_from(["prior", "", "x.csv", "/etc/passwd"])))
def test_fuzz_the_blocks(uncertain: dict[str, Any], decision: Any, worlds: Any) -> None:
    data = tiny(uncertain=uncertain, decision=decision, worlds=worlds)
    try:
        scenario = load_scenario(data)
    except ScenarioError as exc:
        assert exc.issues and all(issue.message for issue in exc.issues)
        return
    assert isinstance(scenario, Scenario)
    for parameter in scenario.uncertain:
        assert parameter.prior.low < parameter.prior.high
