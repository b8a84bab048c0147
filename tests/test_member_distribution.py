"""The member side: per-replication histograms of InMails received and unanswered per active member.

From the engine's bins (``metrics.member_histogram``) through the experiment's records and
``Results.member_distribution`` to ``member_distribution.csv`` of a run folder and back.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scenario_helpers import tiny, write_yaml

from simulator.api import Results, run_scenario
from simulator.cli import main
from simulator.core.metrics import MEMBER_BINS, MEMBER_QUANTITIES, member_histogram
from simulator.experiments.replication import MEMBER_COLUMNS, RECORD_FORMAT, Record, replication_record, run_single
from simulator.experiments.runner import TaskKey
from simulator.io.outputs import MEMBER_FILE, RUN_FILES, load_results
from simulator.io.report import NotARunFolderError, load_run
from simulator.scenario import load_scenario

PER_ACTIVE_MEMBER = {"received": "inmails_per_active_member", "unanswered": "unanswered_per_active_member"}


@pytest.fixture(scope="module")
def res() -> Results:
    return run_scenario(tiny(), {"horizon_days": 30}, replications=2)


def _histograms(res: Results) -> dict[tuple[str, int, str], np.ndarray]:
    """(policy, replication, quantity) -> members per bin, bins in MEMBER_BINS order."""
    md = res.member_distribution
    out = {}
    for (pol, rep, q), g in md.groupby(["policy", "replication", "quantity"], sort=False):
        assert g["bin"].tolist() == list(MEMBER_BINS)
        out[(str(pol), int(rep), str(q))] = g["members"].to_numpy()
    return out


# --------------------------------------------------------------------------- metrics.member_histogram


def test_member_histogram_bins_counts_by_lower_edge_and_leaves_inactive_members_out() -> None:
    counts = np.array([0, 1, 4, 5, 499, 500, 10000, 2, 3, 9, 7, 600])
    active = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)  # 7 and 600: inactive
    hist = member_histogram(counts, active)
    expected = dict.fromkeys(MEMBER_BINS, 0) | {0: 1, 1: 1, 2: 1, 3: 2, 5: 2, 200: 1, 500: 2}
    assert hist.tolist() == list(expected.values())
    assert hist.dtype == np.int64 and hist.sum() == active.sum()


def test_member_histogram_edge_cases() -> None:
    assert member_histogram(np.array([], dtype=np.int64), np.array([], dtype=bool)).tolist() == [0] * len(MEMBER_BINS)
    assert member_histogram(np.array([3, 8]), np.array([False, False])).sum() == 0
    # every bin's lower edge falls in that bin, the value just below it in the previous one
    edges = np.array(MEMBER_BINS)
    hist = member_histogram(edges, np.ones(len(edges), dtype=bool))
    assert hist.tolist() == [1] * len(MEMBER_BINS)
    below = member_histogram(edges[1:] - 1, np.ones(len(edges) - 1, dtype=bool))
    assert below.tolist() == [1] * (len(MEMBER_BINS) - 1) + [0]
    assert member_histogram(np.array([4, 12]), np.array([True, True]), edges=(0, 5)).tolist() == [1, 1]


# --------------------------------------------------------------------------- the experiment's frame


def test_histograms_sum_to_the_active_members_of_each_replication(res: Results) -> None:
    sc = res.scenario
    hist = _histograms(res)
    assert len(hist) == len(sc.policy_names) * res.n_replications * len(MEMBER_QUANTITIES)
    for pol in sc.policy_names:
        for rep in range(res.n_replications):
            full = run_single(sc.market, sc.policies[pol], sc.run, sc.root_seed, rep)
            for q in MEMBER_QUANTITIES:
                assert hist[(pol, rep, q)].sum() == int(full.extra["active_members"]), (pol, rep, q)
                np.testing.assert_array_equal(hist[(pol, rep, q)], full.member_histograms[q])


def test_histograms_agree_with_the_per_active_member_means(res: Results) -> None:
    reps = res.replications.set_index(["policy", "replication"])
    lower = np.array(MEMBER_BINS, dtype=np.float64)
    upper = np.append(lower[1:] - 1, np.inf)  # the largest count each bin can hold (the last bin is open)
    for (pol, rep, q), counts in _histograms(res).items():
        active = counts.sum()
        mean = reps.loc[(pol, rep), PER_ACTIVE_MEMBER[q]]
        assert (lower * counts).sum() / active <= mean + 1e-9, (pol, rep, q)
        used = counts > 0
        assert mean <= (upper[used] * counts[used]).sum() / active + 1e-9, (pol, rep, q)


def test_unanswered_is_never_more_than_received(res: Results) -> None:
    hist = _histograms(res)
    for pol, rep, q in hist:
        if q == "received":  # each member's unanswered <= received: its histogram sits at lower bins
            received, unanswered = np.cumsum(hist[(pol, rep, q)]), np.cumsum(hist[(pol, rep, "unanswered")])
            assert (unanswered >= received).all(), (pol, rep)


def test_frame_is_tidy_and_ordered_like_the_replications(res: Results) -> None:
    md = res.member_distribution
    assert list(md.columns) == list(MEMBER_COLUMNS)
    assert {str(c) for c in md.dtypes[["replication", "bin", "members"]]} == {"int64"}
    pairs = md[["policy", "replication"]].drop_duplicates().reset_index(drop=True)
    pd.testing.assert_frame_equal(pairs, res.replications[["policy", "replication"]].reset_index(drop=True),
                                  check_dtype=False)
    one = md[(md["policy"] == md["policy"].iloc[0]) & (md["replication"] == md["replication"].iloc[0])]
    assert one["quantity"].tolist() == [q for q in MEMBER_QUANTITIES for _ in MEMBER_BINS]


# --------------------------------------------------------------------------- per-replication files


@pytest.fixture(scope="module")
def record() -> Record:
    sc = load_scenario(tiny(horizon_days=15))
    return replication_record(sc.market, sc.policies["new"], sc.run, sc.root_seed, 1)


def test_record_files_keep_the_histograms_exactly(record: Record) -> None:
    assert list(record.member_histograms) == list(MEMBER_QUANTITIES)
    back = Record.from_arrays(record.to_arrays())
    assert list(back.member_histograms) == list(record.member_histograms)
    for q, counts in record.member_histograms.items():
        assert back.member_histograms[q].dtype == np.int64
        np.testing.assert_array_equal(back.member_histograms[q], counts)


def test_histograms_add_little_to_the_pickled_record(record: Record) -> None:
    import dataclasses

    without = dataclasses.replace(record, member_histograms={})
    extra = len(pickle.dumps(record)) - len(pickle.dumps(without))
    assert 0 < extra < 64 * len(MEMBER_BINS) * len(MEMBER_QUANTITIES)  # a few int64 arrays, nothing per member


def test_a_file_of_the_previous_layout_is_computed_again(record: Record, tmp_path: Path) -> None:
    from simulator.experiments.experiment import record_store

    arrays = record.to_arrays()
    meta = json.loads(str(arrays["meta"][()]))
    old = {k: v for k, v in arrays.items() if not k.startswith("member_")}
    old["meta"] = np.array(json.dumps(meta | {"format": RECORD_FORMAT - 1}))
    with pytest.raises(ValueError, match=f"format {RECORD_FORMAT - 1}, expected {RECORD_FORMAT}"):
        Record.from_arrays(old)
    other_bins = dict(arrays, member_bins=np.array([0, 1, 10], dtype=np.int64))
    with pytest.raises(ValueError, match="member bins"):
        Record.from_arrays(other_bins)
    store = record_store(tmp_path)
    key = TaskKey("new", 1)
    np.savez_compressed(store.path(key), **old)
    assert store.load(key) is None  # counts as missing: the replication runs again


# --------------------------------------------------------------------------- the run folder


def test_member_distribution_round_trips_through_the_run_folder(res: Results, tmp_path: Path) -> None:
    assert MEMBER_FILE in RUN_FILES
    folder = res.write(tmp_path / "run")
    assert list(pd.read_csv(folder / MEMBER_FILE).columns) == list(MEMBER_COLUMNS)
    assert MEMBER_FILE in json.loads((folder / "manifest.json").read_text())["files"]
    back = load_results(folder).member_distribution
    pd.testing.assert_frame_equal(back, res.member_distribution)


def test_an_old_folder_without_the_file_loads_with_an_empty_frame(res: Results, tmp_path: Path) -> None:
    folder = res.write(tmp_path / "run")
    (folder / MEMBER_FILE).unlink()
    loaded = load_run(folder)
    assert loaded.member_distribution.empty and list(loaded.member_distribution.columns) == list(MEMBER_COLUMNS)
    pd.testing.assert_frame_equal(loaded.replications, load_results(folder).replications)


def test_results_without_histograms_write_no_file_and_remove_a_stale_one(res: Results, tmp_path: Path) -> None:
    folder = res.write(tmp_path / "run")
    bare = Results(res.scenario, res.replications, res.timeseries, res.breakdown_replications)
    bare.write(folder)
    assert not (folder / MEMBER_FILE).exists()
    assert MEMBER_FILE not in json.loads((folder / "manifest.json").read_text())["files"]


def test_a_damaged_file_is_named(res: Results, tmp_path: Path) -> None:
    folder = res.write(tmp_path / "run")
    (folder / MEMBER_FILE).write_text("policy,members\nold,3\n")
    with pytest.raises(NotARunFolderError, match=f"{MEMBER_FILE}: columns policy, members, expected policy"):
        load_run(folder)


def test_a_resumed_run_writes_the_same_histograms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=20))
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--no-progress", "-q", "--no-figures"]
    assert main(["run", str(scenario), "--out", str(straight), "-n", "2", *common]) == 0
    assert main(["run", str(scenario), "--out", str(resumed), "-n", "1", *common]) == 0
    assert main(["run", str(scenario), "--out", str(resumed), "-n", "2", "--resume", *common]) == 0
    capsys.readouterr()
    assert (resumed / MEMBER_FILE).read_bytes() == (straight / MEMBER_FILE).read_bytes()


def test_member_histogram_lookup_table_and_binary_search_agree() -> None:
    """The lookup-table path (last edge up to 65,536) and the binary-search path give the same bins
    as a direct search, on 100,000 random counts with some past the last edge."""
    rng = np.random.default_rng(2)
    counts = rng.geometric(0.02, 100_000) - 1
    counts[:50] = 10**6
    active = rng.random(counts.size) < 0.7
    for edges in (MEMBER_BINS, (0, 7, 90, 65_536), (0, 3, 1 << 17)):
        e = np.asarray(edges)
        direct = np.bincount(np.searchsorted(e, counts[active], side="right") - 1, minlength=len(edges))
        np.testing.assert_array_equal(member_histogram(counts, active, edges=edges), direct)
