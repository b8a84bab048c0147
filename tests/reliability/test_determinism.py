"""Same scenario and seed: byte-identical output files across runs, worker counts and executors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .helpers import cli, tiny_file

FILES = ("summary.csv", "comparison.csv", "replications.csv", "timeseries.csv", "breakdowns.csv",
         "breakdown_comparison.csv", "breakdown_replications.csv", "scenario.resolved.yaml")
HAVE_DASK = importlib.util.find_spec("distributed") is not None


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_file(tmp_path_factory.mktemp("det"))


def run_to(capsys: pytest.CaptureFixture[str], scenario: Path, out: Path, *extra: str) -> dict[str, bytes]:
    code, _, err = cli(capsys, "run", str(scenario), "--out", str(out), "-n", "4", "-q", *extra)
    assert code == 0, err
    return {name: (out / name).read_bytes() for name in FILES}


@pytest.mark.parametrize("executor", [
    ["--workers", "1"], ["--workers", "2"], pytest.param(["--workers", "3"], marks=pytest.mark.slow),
    pytest.param(["--dask", "local", "--workers", "2"],
                 marks=[pytest.mark.skipif(not HAVE_DASK, reason="dask[distributed] not installed"),
                        pytest.mark.slow]),
], ids=["again-serial", "2-processes", "3-processes", "dask-local"])
def test_byte_identical_outputs_whatever_the_executor(executor: list[str], scenario: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    reference = run_to(capsys, scenario, tmp_path / "serial")
    other = run_to(capsys, scenario, tmp_path / "other", *executor)
    for name in FILES:
        assert other[name] == reference[name], name


def test_another_seed_gives_other_numbers(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The check above can fail: the summary does depend on the seed."""
    a = run_to(capsys, scenario, tmp_path / "a")
    b = run_to(capsys, scenario, tmp_path / "b", "--seed", "8")
    assert a["summary.csv"] != b["summary.csv"]
