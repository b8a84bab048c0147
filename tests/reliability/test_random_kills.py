"""Random kills: ``kill -9`` of a whole run at a random moment, then ``--resume``, 50 times.

Each round starts ``python -m simulator run tiny.yaml --out DIR --workers 2 -n 4`` in its own
process group and SIGKILLs the group (the main process and its two workers) at a seeded random
moment, in one of three stretches taken in turn: before the first replication file (a delay drawn
below the time the reference run took to write it), mid-way (once a random number of replication
files is on disk) or after the last one (a delay drawn below the time the reference took from its
last replication file to its exit: while the tables, the manifest and the run index are written).
Then:

* every file the killed run left parses (hidden ``.NAME.tmp-*`` files are the writes not yet moved
  into place); a folder with ``manifest.json`` holds every result file, equal to the reference;
* the same command with ``--resume`` finishes with exit 0, and every result file is byte-identical
  to one uninterrupted run of the same command (``manifest.json`` holds times, so it is left out);
  the replication files hold the same records; no temporary file is left behind;
* at the end the run index the 50 runs registered in still reads.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.experiments.replication import Record
from simulator.io.outputs import TASKS_DIR
from simulator.io.run_index import INDEX_NAME, list_runs

from .helpers import RUN_OUTPUTS, kill_group, spawn, tiny_file, unreadable_files, wait_group_gone

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="needs POSIX signals and /proc")

ROUNDS = int(os.environ.get("KILL_ROUNDS", 50))
REPLICATIONS = 4
TASKS = 2 * REPLICATIONS  # two policies
STRETCHES = ("before the first file", "mid-way", "after the last file")


@dataclass(frozen=True)
class Timing:
    """When the reference run wrote its first and last replication file, and when it exited (seconds)."""

    first: float
    last: float
    end: float


def task_files(out: Path) -> list[Path]:
    folder = out / TASKS_DIR
    return sorted(folder.glob("*.npz")) if folder.is_dir() else []


def command(scenario: Path, out: Path) -> list[str]:
    return ["run", str(scenario), "--out", str(out), "--workers", "2", "-n", str(REPLICATIONS), "-q", "--no-figures"]


def watch(proc: subprocess.Popen[str], out: Path) -> Timing:
    """Follow a run to its end, noting when its first and last replication files appeared."""
    start = time.monotonic()
    first = last = None
    while proc.poll() is None:
        n = len(task_files(out))
        now = time.monotonic() - start
        if n and first is None:
            first = now
        if n == TASKS and last is None:
            last = now
        time.sleep(0.005)
    end = time.monotonic() - start
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    return Timing(first if first is not None else end, last if last is not None else end, end)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Timing]:
    """One uninterrupted run of the command, as a real process: (scenario, run folder, its timing)."""
    folder = tmp_path_factory.mktemp("reference")
    scenario = tiny_file(folder)
    out = folder / "run"
    timing = watch(spawn(command(scenario, out)), out)
    return scenario, out, timing


def wait_until(proc: subprocess.Popen[str], done: object, timeout: float = 120.0) -> None:
    """Poll ``done()`` every 5 ms until it holds or the run ends."""
    end = time.monotonic() + timeout
    while not done() and proc.poll() is None:  # type: ignore[operator]
        if time.monotonic() > end:
            kill_group(proc)
            pytest.fail(f"the run did not get there in {timeout} s")
        time.sleep(0.005)


def kill_at_random(proc: subprocess.Popen[str], out: Path, stretch: str, timing: Timing, rng: random.Random) -> str:
    """SIGKILL the run's process group at a random moment of ``stretch``; say what the moment was."""
    started = time.monotonic()
    if stretch == STRETCHES[0]:
        wait_until(proc, lambda: time.monotonic() - started >= rng.uniform(0, timing.first))
    elif stretch == STRETCHES[1]:
        k = rng.randint(1, TASKS - 1)
        wait_until(proc, lambda: len(task_files(out)) >= k)
    else:
        wait_until(proc, lambda: len(task_files(out)) >= TASKS)
        delay = time.monotonic() + rng.uniform(0, timing.end - timing.last)
        wait_until(proc, lambda: time.monotonic() >= delay)
    ended = proc.poll() is not None
    kill_group(proc)
    files = len(task_files(out))
    if ended:
        return "after the run ended"
    return {0: STRETCHES[0], TASKS: STRETCHES[2]}.get(files, STRETCHES[1])


def check_killed_folder(out: Path, ref: Path) -> None:
    """No half-written file; a folder with a manifest is complete."""
    if not out.exists():
        return
    assert unreadable_files(out) == []
    if (out / "manifest.json").exists():  # written last: everything else is there
        for name in RUN_OUTPUTS:
            assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def records(out: Path) -> dict[str, Record]:
    found = {}
    for path in task_files(out):
        with np.load(path, allow_pickle=False) as data:
            found[path.name] = Record.from_arrays({k: data[k] for k in data.files})
    return found


def same_record(a: Record, b: Record) -> bool:
    return (a.metrics == b.metrics and a.breakdowns == b.breakdowns and a.spawn_key == b.spawn_key
            and list(a.daily) == list(b.daily) and all(a.daily[k].tobytes() == b.daily[k].tobytes() for k in a.daily))


def temporary_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*") if ".tmp-" in p.name)


def check_resumed(out: Path, ref: Path, ref_records: dict[str, Record]) -> None:
    for name in RUN_OUTPUTS:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    mine = records(out)
    assert sorted(mine) == sorted(ref_records)
    assert all(same_record(mine[name], ref_records[name]) for name in mine)


@pytest.mark.slow
def test_fifty_random_kill_9s_then_resume_give_the_uninterrupted_results(
        reference: tuple[Path, Path, Timing], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, ref, timing = reference
    ref_records = records(ref)
    rng = random.Random(20150201)
    landed: Counter[str] = Counter()
    leftovers: dict[int, list[str]] = {}
    started = time.monotonic()
    for i in range(ROUNDS):
        out = tmp_path / f"run{i:02d}"
        argv = command(scenario, out)
        stretch = STRETCHES[i % len(STRETCHES)]
        proc = spawn(argv)
        try:
            moment = kill_at_random(proc, out, stretch, timing, rng)
        finally:
            kill_group(proc)
        wait_group_gone(proc.pid)  # the workers too: they hold the folder's lock until they are gone
        landed[moment] += 1
        where = f"round {i}: killed {moment} ({len(task_files(out))} replication files)"
        try:
            check_killed_folder(out, ref)
            code = main([*argv, "--resume", "--no-progress"])
            err = capsys.readouterr().err
            assert code == 0, err
            check_resumed(out, ref, ref_records)
            if temporary_files(out):
                leftovers[i] = temporary_files(out)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc
    elapsed = time.monotonic() - started
    print(f"random kills: {ROUNDS} rounds in {elapsed:.0f} s; killed: {dict(landed)}; reference {timing}")
    assert all(landed[s] for s in STRETCHES), f"a stretch was never hit: {dict(landed)}"
    runs = list_runs(tmp_path / INDEX_NAME)  # a kill while registering a run must not damage the index
    assert set(runs["folder"].map(lambda f: Path(f).name)) >= {f"run{i:02d}" for i in range(ROUNDS)}
    assert not leftovers, f"temporary files left after --resume, by round: {leftovers}"


def test_a_temporary_file_left_by_a_kill_is_gone_after_resume(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The minimal reproduction of what the random kills find: kill -9 in the middle of writing a table."""
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    argv = ["run", str(scenario), "--out", str(out), "-n", "1", "-q", "--no-figures", "--no-progress"]
    assert main(argv) == 0
    (out / ".summary.csv.tmp-123-456").write_text("half a fil")  # what os.replace never got to move
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert temporary_files(out) == []


def test_a_kill_before_the_checkpoint_was_in_place_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kill -9 between creating --out and moving checkpoint.json into place: the printed --resume must work."""
    scenario = tiny_file(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / ".inmail-sim.lock").touch()
    (out / ".checkpoint.json.tmp-123-456").write_text('{"form')
    code = main(["run", str(scenario), "--out", str(out), "-n", "1", "-q", "--no-figures", "--no-progress", "--resume"])
    assert code == 0, capsys.readouterr().err
    assert temporary_files(out) == []

