"""Runs across plausible worlds on a small market (2,000 members, 60 recruiters, 60 days): the tables'
structure and invariants, the same numbers serially / with 2 workers / on Dask, resume, the CLI."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.core.metrics import METRIC_NAMES
from simulator.experiments.experiment import record_store
from simulator.experiments.robustness import ROBUSTNESS_COLUMNS
from simulator.experiments.runner import FAULT_ENV, open_executor
from simulator.experiments.world_statistics import WORLDS_COMPARISON_COLUMNS
from simulator.experiments.world_study import WorldResults, run_worlds
from simulator.io.world_files import WORLD_FILES, WorldsView
from simulator.io.world_tables import format_worlds
from simulator.scenario import Scenario, load_scenario
from simulator.scenario.decision import Requirement
from simulator.scenario.loading import shrink_overrides
from simulator.scenario.uncertain import Prior, UncertainParameter

HAVE_DASK = importlib.util.find_spec("distributed") is not None
SOURCE = str(Path(__file__).resolve().parents[1] / "scenarios" / "old_vs_new.yaml")
PARAMETERS = (UncertainParameter("personalization_effect", (("market.response.personalization_effect", 1.0),),
                                 Prior("uniform", 0.5, 2.4)),)
REQUIREMENTS = (Requirement("response_rate", ">=", 0.2), Requirement("credits_per_response", "<=", 5.0))
W, R = 6, 2


@pytest.fixture(scope="module")
def small() -> Scenario:
    return load_scenario(SOURCE, shrink_overrides(SOURCE))


@pytest.fixture(scope="module")
def serial(small: Scenario) -> WorldResults:
    return run_worlds(small, PARAMETERS, "prior", requirements=REQUIREMENTS, world_count=W, per_world=R)


def same(a: WorldResults, b: WorldResults) -> None:
    for name in ("worlds", "world_outcomes", "worlds_comparison", "robustness"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)


# --------------------------------------------------------------------------- the tables


def test_the_files_have_the_agreed_columns_and_one_row_per_replication(serial: WorldResults) -> None:
    worlds, outcomes = serial.worlds, serial.world_outcomes
    assert list(worlds.columns) == ["replication", "world", "personalization_effect"]
    assert worlds["replication"].tolist() == list(range(W * R))
    assert worlds["world"].tolist() == [i // R for i in range(W * R)]
    assert list(outcomes.columns) == ["replication", "world", "policy", *METRIC_NAMES]
    assert len(outcomes) == W * R * 2
    merged = outcomes.merge(worlds, on="replication", suffixes=("", "_w"))
    assert (merged["world"] == merged["world_w"]).all()
    assert list(serial.worlds_comparison.columns) == list(WORLDS_COMPARISON_COLUMNS)
    assert list(serial.robustness.columns) == list(ROBUSTNESS_COLUMNS)


def test_each_replication_ran_in_its_world_and_the_policies_shared_its_seed(small: Scenario,
                                                                            serial: WorldResults) -> None:
    from simulator.core.engine import run_replication
    from simulator.core.seeding import replication_seed
    from simulator.scenario.uncertain import world_market

    i = 7
    value = float(serial.worlds.loc[i, "personalization_effect"])
    market = world_market(small.market, PARAMETERS, [value])
    for policy in ("old", "new"):
        alone = run_replication(market, small.policies[policy], small.run, seed=replication_seed(small.root_seed, i))
        row = serial.world_outcomes[(serial.world_outcomes["replication"] == i)
                                    & (serial.world_outcomes["policy"] == policy)]
        assert row["response_rate"].item() == alone.metrics["response_rate"]


def test_the_comparison_invariants_on_a_real_run(serial: WorldResults) -> None:
    table = serial.worlds_comparison
    assert set(table["policy"]) == {"new"} and table["metric"].tolist() == list(METRIC_NAMES)
    ok = table.dropna(subset=["mc_ci_low"])
    assert (ok["mc_ci_low"] <= ok["diff_mean"]).all() and (ok["diff_mean"] <= ok["mc_ci_high"]).all()
    assert (table["worlds_q025"] <= table["worlds_q10"] + 1e-9).all()
    assert (table["worlds_q10"] <= table["worlds_q90"] + 1e-9).all()
    assert (table["worlds_q90"] <= table["worlds_q975"] + 1e-9).all()
    shares = table["mc_share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()
    # the mean difference is the paired comparison's (every replication counts once)
    pooled = serial.results.comparison.set_index("metric")["diff"]
    assert np.allclose(table.set_index("metric")["diff_mean"], pooled.loc[list(METRIC_NAMES)], rtol=1e-12, atol=1e-9)


def test_the_printed_tables_fit_in_100_columns(serial: WorldResults) -> None:
    text = format_worlds(serial)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "80% of worlds" in text and "P(better)" in text and "regret" in text and "all requirements" in text


# --------------------------------------------------------------------------- determinism


def test_two_workers_give_the_serial_tables(small: Scenario, serial: WorldResults) -> None:
    same(run_worlds(small, PARAMETERS, "prior", requirements=REQUIREMENTS, world_count=W, per_world=R, workers=2),
         serial)


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Executor]:
    if not HAVE_DASK:
        pytest.skip("dask[distributed] not installed (pip install 'inmail-sim[dask]')")
    with open_executor(2, "local") as ex:
        yield ex


def test_dask_gives_the_serial_tables(small: Scenario, serial: WorldResults, dask_executor: Executor) -> None:
    same(run_worlds(small, PARAMETERS, "prior", requirements=REQUIREMENTS, world_count=W, per_world=R,
                    executor=dask_executor), serial)


def test_a_store_is_reused_and_only_the_missing_replications_run(small: Scenario, serial: WorldResults,
                                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    from simulator.experiments.experiment import ReplicationError

    store = record_store(tmp_path / "replications")
    monkeypatch.setenv(FAULT_ENV, "raise:9")
    with pytest.raises(ReplicationError):
        run_worlds(small, PARAMETERS, "prior", requirements=REQUIREMENTS, world_count=W, per_world=R, store=store)
    assert store.count() == W * R * 2 - 2
    monkeypatch.delenv(FAULT_ENV)
    done: list[int] = []
    again = run_worlds(small, PARAMETERS, "prior", requirements=REQUIREMENTS, world_count=W, per_world=R,
                       store=store, progress=lambda n, total: done.append(n))
    same(again, serial)
    assert done[-1] == W * R * 2


# --------------------------------------------------------------------------- the variance split on a market


def test_mc_share_on_a_market_with_identical_and_with_very_different_worlds(small: Scenario, tmp_path: Path) -> None:
    """W = 20 worlds x R = 2.  Identical worlds (a posterior whose rows are all the same): the estimate of
    sigma_b^2 is 0 in expectation with a relative standard error of about sqrt(2 / 19) = 0.32 of the
    Monte Carlo variance of a world mean, so mc_share >= 1 / (1 + 3 x 0.32 / 2) = 0.67 at three standard
    errors; 0.6 is asserted.  Very different worlds (every segment's base response from 0.05 to 0.6):
    credits per response moves from about 1 to 17 across worlds against a Monte Carlo sd near 0.2, so
    mc_share is near 0.003; below 0.05 is asserted."""
    rows = "\n".join(f"{k},1,1.6" for k in range(30))
    path = tmp_path / "posterior.csv"
    path.write_text(f"world,weight,personalization_effect\n{rows}\n", encoding="utf-8")
    same_worlds = run_worlds(small, PARAMETERS, path, world_count=20, per_world=2).worlds_comparison
    shares = same_worlds.set_index("metric")["mc_share"]
    assert shares["net_credit_burn"] >= 0.6 and shares["credits_per_response"] >= 0.6
    segments = [s.name for s in small.market.members.segments]
    base = (UncertainParameter("base_response", tuple((f"market.members.segments.{s}.base_response", 1.0)
                                                      for s in segments), Prior("uniform", 0.05, 0.6)),)
    apart = run_worlds(small, base, "prior", world_count=20, per_world=2).worlds_comparison
    assert apart.set_index("metric")["mc_share"]["credits_per_response"] < 0.05


# --------------------------------------------------------------------------- the public API


def test_the_public_api_returns_the_tables(small: Scenario) -> None:
    import simulator

    res = simulator.run_worlds(small, worlds="prior", world_count=3, replications=2, uncertain=PARAMETERS,
                               decision=REQUIREMENTS)
    assert isinstance(res, WorldsView)
    assert list(res.worlds_comparison.columns) == list(WORLDS_COMPARISON_COLUMNS)
    assert not res.robustness.empty and "P(better)" in res.table()
    with pytest.raises(ValueError, match="worlds='prior'"):
        simulator.run_worlds(small, uncertain=PARAMETERS)
    # by default the scenario's own uncertain: and decision: blocks
    own = simulator.run_worlds(SOURCE, shrink_overrides(SOURCE), worlds="prior", world_count=2)
    assert list(own.worlds.columns[2:]) == [p.name for p in small.uncertain]
    assert set(own.robustness["metric"]) >= {r.text for r in small.decision}


def test_write_puts_the_worlds_files_and_entry_in_the_folder(serial: WorldResults, tmp_path: Path) -> None:
    out = WorldsView(serial).write(tmp_path / "run", index=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(WORLD_FILES) <= set(manifest["files"])
    assert manifest["worlds"]["source"] == "prior" and manifest["worlds"]["count"] == W
    assert manifest["worlds"]["parameters"] == ["personalization_effect"]
    assert manifest["fingerprint"]["worlds"]["count"] == W
    assert manifest["baseline"] == "old" and manifest["policies"] == ["old", "new"]
    for name in WORLD_FILES:
        assert (out / name).is_file()
