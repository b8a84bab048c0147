"""The run index (``inmail-sim runs``) and comparing runs (``inmail-sim compare``, ``compare_runs``)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import tiny, write_yaml
from scipy import stats

import simulator
from simulator.cli import main
from simulator.experiments.experiment import run_experiment
from simulator.io import run_index
from simulator.io.outputs import write_run
from simulator.io.run_comparison import RunComparisonError, compare_runs
from simulator.io.run_index import ENV_VAR, INDEX_NAME, list_runs
from simulator.scenario import load_scenario

QUIET: tuple[str, ...] = ("--no-progress", "-q", "--no-figures")
WINDOW_60 = "policies.new.refund.window_days=60"
"""A change to the new policy only: the same market, so the same seed pairs the two runs."""


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in ``tmp_path`` with the default index location (``runs/``)."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    write_yaml(tmp_path / "tiny.yaml", tiny())
    write_yaml(tmp_path / "other.yaml", tiny(name="other"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], scenario: str, out: str, *extra: str) -> str:
    code = main(["run", scenario, "--out", out, "-n", "3", "--set", "horizon_days=30", *extra, *QUIET])
    _, err = capsys.readouterr()
    assert code == 0, err
    return err


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def net_burn(folder: str, policy: str) -> np.ndarray:
    reps = pd.read_csv(Path(folder) / "replications.csv")
    return reps[reps["policy"] == policy].sort_values("replication")["net_credit_burn"].to_numpy(dtype=float)


# --------------------------------------------------------------------------- inmail-sim runs


def test_runs_lists_newest_first_and_filters_by_scenario(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/first", "--seed", "3")
    run(capsys, "other.yaml", "runs/second", "--seed", "4")
    assert (here / "runs" / INDEX_NAME).is_file()
    assert not (here / "runs" / "first" / INDEX_NAME).exists()  # the run folder itself is untouched

    code, out, _ = cli(capsys, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["run", "finished", "scenario", "seed", "x"]
    second, first = (next(i for i, line in enumerate(lines) if f"runs/{n}" in line) for n in ("second", "first"))
    assert second < first  # newest first
    assert lines[second].split()[:1] == ["2"] and "other" in lines[second] and "4 x 3" in lines[second]
    assert lines[first].split()[:1] == ["1"] and "tiny" in lines[first] and "3 x 3" in lines[first]
    assert "old (base)" in out and "pp" in out and "2 runs in runs/" in out

    code, out, _ = cli(capsys, "runs", "--scenario", "other")
    assert code == 0 and "runs/second" in out and "runs/first" not in out
    code, out, _ = cli(capsys, "runs", "--limit", "1")
    assert "runs/second" in out and "runs/first" not in out and "the newest 1 of 2 runs" in out

    frame = list_runs("runs")
    assert list(frame["id"].drop_duplicates()) == [2, 1]
    row = frame[(frame["id"] == 1) & (frame["policy"] == "new")].iloc[0]
    reps = pd.read_csv(here / "runs" / "first" / "replications.csv")
    new, old = (reps[reps["policy"] == p]["response_rate"].to_numpy() for p in ("new", "old"))
    assert row["response_rate"] == pytest.approx(new.mean(), rel=1e-12)
    assert row["response_rate_diff"] == pytest.approx((new - old).mean(), rel=1e-9, abs=1e-15)
    assert row["root_seed"] == 3 and row["replications"] == 3 and row["scenario_file"].endswith("tiny.yaml")
    assert row["overrides"] == ("horizon_days=30",) and len(row["model_sha256"]) == 16
    assert simulator.list_runs("runs", scenario="other")["scenario"].unique().tolist() == ["other"]


def test_deleted_folder_is_shown_missing_and_pruned(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/keep")
    run(capsys, "tiny.yaml", "runs/gone")
    for p in (here / "runs" / "gone").rglob("*"):
        if p.is_file():
            p.unlink()
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "runs/gone  (missing)" in out and "runs/keep  (missing)" not in out
    code, out, _ = cli(capsys, "runs", "--prune")
    assert code == 0 and "pruned run 2" in out and "runs/gone" in out.splitlines()[0]
    assert list(list_runs("runs")["folder"].drop_duplicates()) == [str(here / "runs" / "keep")]


def test_a_rerun_into_the_same_folder_replaces_its_row(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/x", "--seed", "1")
    run(capsys, "tiny.yaml", "runs/x", "--seed", "2", "--force")
    frame = list_runs("runs")
    assert frame["id"].unique().tolist() == [2] and frame["root_seed"].unique().tolist() == [2]


def test_runs_without_an_index(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "no runs registered yet" in out
    code, _, err = cli(capsys, "runs", "--index", "nope.sqlite")
    assert code == 2 and "no run index at nope.sqlite" in err and "Traceback" not in err


# --------------------------------------------------------------------------- registration never breaks a run


def test_a_corrupt_index_is_a_warning_not_a_failed_run(here: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bad = here / "bad.sqlite"
    bad.write_bytes(b"this is not a database file " * 40)
    monkeypatch.setenv(ENV_VAR, str(bad))
    err = run(capsys, "tiny.yaml", "runs/a")
    assert (here / "runs" / "a" / "manifest.json").is_file()
    assert "warning" in err and "not added to the run index" in err and str(bad) in err
    assert bad.read_bytes() == b"this is not a database file " * 40  # left as it was
    code, _, err = cli(capsys, "runs")
    assert code == 2 and "cannot read the run index" in err


def test_a_locked_index_is_a_warning_not_a_failed_run(here: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run(capsys, "tiny.yaml", "runs/a")
    monkeypatch.setattr(run_index, "BUSY_TIMEOUT", 0.05)
    holder = sqlite3.connect(here / "runs" / INDEX_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of writing
    try:
        err = run(capsys, "tiny.yaml", "runs/b")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "not added to the run index" in err and "locked" in err
    assert (here / "runs" / "b" / "manifest.json").is_file()
    assert list(list_runs("runs")["id"].unique()) == [1]


def test_concurrent_registrations_all_arrive(tmp_path: Path) -> None:
    results = run_experiment(load_scenario(tiny(horizon_days=10, replications=2)))
    index = tmp_path / "index.sqlite"
    folders = [tmp_path / f"r{i}" for i in range(8)]
    for f in folders:
        write_run(results, f, index=False)
    manifest = {"finished": "2026-01-01T00:00:00+00:00"}
    errors: list[BaseException] = []

    def register(folder: Path) -> None:
        try:
            run_index.register(run_index.entry_of(results, folder, manifest), index)
        except BaseException as exc:  # pragma: no cover - the failure the test looks for
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    frame = list_runs(index)
    assert sorted(frame["folder"].unique()) == sorted(str(f.resolve()) for f in folders)
    assert sorted(frame["id"].unique()) == list(range(1, 9))
    assert not (tmp_path / INDEX_NAME).exists()  # index=False registered nothing


# --------------------------------------------------------------------------- inmail-sim compare


def test_compare_pairs_runs_that_share_seed_and_market(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a", "--seed", "11")
    run(capsys, "tiny.yaml", "runs/b", "--seed", "11", "--set", WINDOW_60)
    table = compare_runs(["runs/a", "2"], metrics=["net_credit_burn"], policies=["new"])
    assert list(table["run"]) == ["A", "B"] and list(table["pairing"]) == ["reference", "paired"]
    row = table.iloc[1]
    assert row["reference"] == "A:new" and row["n_pairs"] == 3 and row["run_id"] == 2

    # by hand, n = 3 replications: paired t-interval of B - A, and Welch's interval of the same data
    a, b = net_burn("runs/a", "new"), net_burn("runs/b", "new")
    d = b - a
    t2 = stats.t.ppf(0.975, 2)
    paired_hw = t2 * d.std(ddof=1) / np.sqrt(3)
    assert row["diff"] == pytest.approx(d.mean(), rel=1e-12)
    assert row["diff_ci_low"] == pytest.approx(d.mean() - paired_hw, rel=1e-9)
    assert row["diff_ci_high"] == pytest.approx(d.mean() + paired_hw, rel=1e-9)
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    welch_hw = stats.t.ppf(0.975, (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)) * np.sqrt(va + vb)
    assert paired_hw < welch_hw / 5  # the same market: the pairing removes most of the noise
    assert d.std() > 0  # the window change did move the burn

    code, out, _ = cli(capsys, "compare", "runs/a", "runs/b")
    assert code == 0
    assert "B vs A: paired: same root seed 11 and the same market" in out
    assert "paired, 3 replications" in out and "unpaired" not in out.split("Differences are")[1]
    assert "response rate (response_rate" in out and "net credit burn (net_credit_burn" in out
    assert "--set policies.new.refund.window_days=60" in out


def test_compare_falls_back_to_unpaired_when_seeds_differ(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a", "--seed", "11")
    run(capsys, "tiny.yaml", "runs/c", "--seed", "12", "-n", "4")
    table = compare_runs(["runs/a", "runs/c"], metrics=["net_credit_burn"])
    assert list(table["pairing"]) == ["reference", "paired", "unpaired", "unpaired"]
    row = table[(table["run"] == "B") & (table["policy"] == "new")].iloc[0]
    a, c = net_burn("runs/a", "new"), net_burn("runs/c", "new")
    va, vc = a.var(ddof=1) / 3, c.var(ddof=1) / 4
    hw = stats.t.ppf(0.975, (va + vc) ** 2 / (va**2 / 2 + vc**2 / 3)) * np.sqrt(va + vc)
    assert row["diff"] == pytest.approx(c.mean() - a.mean(), rel=1e-12)
    assert row["diff_ci_high"] - row["diff_ci_low"] == pytest.approx(2 * hw, rel=1e-9)
    assert row["rel_change"] == pytest.approx((c.mean() - a.mean()) / a.mean(), rel=1e-12)
    code, out, _ = cli(capsys, "compare", "runs/a", "runs/c", "-m", "sent")
    assert code == 0 and "unpaired (Welch): root seeds differ (12 vs 11)" in out and "unpaired (Welch)" in out


def test_same_seed_but_another_market_is_unpaired(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a", "--seed", "11")
    run(capsys, "tiny.yaml", "runs/m", "--seed", "11", "--set", "market.members.count=1400")
    table = compare_runs(["runs/a", "runs/m"], policies=["old"], against="old")
    assert list(table["pairing"]) == ["reference", "unpaired"] * 2
    code, out, _ = cli(capsys, "compare", "runs/a", "runs/m")
    assert code == 0 and "unpaired (Welch): the market: blocks differ" in out


@pytest.mark.parametrize("argv, message", [
    (["runs/a", "nowhere"], "nowhere: no such run folder, and not a run id"),
    (["runs/a", "7"], "no run 7 in the run index"),
    (["runs/a", "empty"], "empty: not a finished run folder (no manifest.json"),
    (["runs/a", "runs/a"], "the same run as A"),
    (["runs/a", "-m", "respone_rate"], "unknown metric respone_rate: choose from sent,"),
    (["runs/a", "-p", "newest"], "unknown policy newest: the runs have old, new"),
    (["runs/a", "--against", "newest"], "--against newest: not a policy of the first run"),
])
def test_compare_bad_input_exits_2(here: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                   message: str) -> None:
    run(capsys, "tiny.yaml", "runs/a")
    (here / "empty").mkdir()
    code, out, err = cli(capsys, "compare", *argv)
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_compare_runs_api_raises_on_bad_input(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a")
    with pytest.raises(RunComparisonError, match="unknown metric"):
        simulator.compare_runs(["runs/a"], metrics=["respone_rate"])
    with pytest.raises(RunComparisonError, match="no such run folder"):
        simulator.compare_runs(["runs/a", "runs/b"])


def test_paired_uses_the_replications_both_runs_have(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a", "--seed", "11")
    run(capsys, "tiny.yaml", "runs/b", "--seed", "11", "-n", "4", "--set", WINDOW_60)
    row = compare_runs(["runs/a", "runs/b"], metrics=["net_credit_burn"], policies=["new"]).iloc[1]
    a, b = net_burn("runs/a", "new"), net_burn("runs/b", "new")
    assert row["pairing"] == "paired" and row["n_pairs"] == 3 and row["n"] == 4
    assert row["diff"] == pytest.approx((b[:3] - a).mean(), rel=1e-12)
    assert row["mean"] == pytest.approx(b.mean(), rel=1e-12)  # the mean uses every replication of the run


def test_the_environment_variable_names_one_index(here: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(here / "shared"))
    (here / "shared").mkdir()
    run(capsys, "tiny.yaml", "one/a")
    run(capsys, "tiny.yaml", "two/b")
    assert (here / "shared" / INDEX_NAME).is_file() and not (here / "one" / INDEX_NAME).exists()
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "one/a" in out and "two/b" in out and "2 runs in" in out
    code, out, _ = cli(capsys, "compare", "1", "2", "-m", "sent")
    assert code == 0 and "B vs A: paired" in out


# --------------------------------------------------------------------------- bad runs and indexes (exit 2)


def test_a_damaged_run_or_index_or_id_exits_2(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "tiny.yaml", "runs/a")
    run(capsys, "tiny.yaml", "runs/b")
    reps = here / "runs/b/replications.csv"
    lines = reps.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "x"  # a damaged replication number: `report` refuses the folder, so does `compare`
    lines[1] = ",".join(cells)
    reps.write_text("\n".join(lines) + "\n")
    code, _, err = cli(capsys, "compare", "runs/a", "runs/b")
    assert code == 2 and "replications.csv" in err and "Traceback" not in err
    for bad_id in ("\u00b2", "99999999999999999999"):  # a Unicode digit; an id beyond SQLite's integers
        code, _, err = cli(capsys, "compare", "runs/a", bad_id)
        assert code == 2 and "Traceback" not in err, err
    broken = here / "broken.sqlite"
    with sqlite3.connect(broken) as con:
        con.execute("PRAGMA user_version = 1")  # looks like an index, holds no tables
    code, _, err = cli(capsys, "runs", "--index", str(broken))
    assert code == 2 and "cannot read the run index" in err and "Traceback" not in err


def test_runs_at_different_scales_do_not_share_a_market(tmp_path: Path) -> None:
    a = load_scenario(tiny(), ["scale=0.5"])
    b = load_scenario(tiny(), ["scale=0.8"])
    assert run_index.market_hash(a) != run_index.market_hash(b)
    assert run_index.market_hash(load_scenario(tiny())) == run_index.market_hash(load_scenario(tiny()))
