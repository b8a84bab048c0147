"""The README's Python examples run as written, so the front page cannot drift from the API.

Every ```python block of README.md is executed in its own namespace (each block is self-contained:
it does its own imports), in a temporary working folder that sees the repository's ``scenarios/``,
so relative paths resolve as they do from the repository root and anything a block writes lands in
the temporary folder.  Blocks are run at the sizes they show (20,000 members; about 10-15 s each on
the 2-core development machine).

A block that defines a pytest test function (the baseline regression example) is executed to
define it, the baseline it reads is first written with the API the README's prose names for that
(``simulator.experiments.baseline.save_baseline(res, "baselines/main.json")``, taken from the README
itself), and then the function is called.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scenario_helpers import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SAVE_CALL = re.compile(r"`(simulator\.experiments\.baseline\.save_baseline\(res, \"([^\"]+)\"\))`")
"""The README's own words for writing the baseline the pytest example reads."""


def python_blocks() -> list[str]:
    return [m.group(1) for m in FENCE.finditer(README.read_text(encoding="utf-8"))]


BLOCKS = python_blocks()


def test_the_readme_has_its_python_examples() -> None:
    """Three examples: the notebook one-liner, one replication from config objects, the baseline test."""
    assert len(BLOCKS) == 3
    assert sum("def test_" in b for b in BLOCKS) == 1


def defined_tests(namespace: dict[str, Any]) -> list[Callable[[], None]]:
    """The pytest test functions a block defined."""
    return [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]


@functools.cache
def _cached_run(path: str, overrides: tuple[str, ...], replications: int) -> Any:
    from simulator import run_scenario

    return run_scenario(path, list(overrides), replications=replications)


def cached_run_scenario(path: str, overrides: list[str], *, replications: int) -> Any:
    """``run_scenario`` that computes each (path, overrides, replications) once."""
    return _cached_run(path, tuple(overrides), replications)


def first_run_scenario_call(block: str) -> str:
    """Source of the first ``run_scenario(...)`` call inside the block's test function."""
    tree = ast.parse(block)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "run_scenario":
            segment = ast.get_source_segment(block, node)
            assert segment is not None
            return segment
    raise AssertionError("the README's test example calls no run_scenario(...)")


@pytest.fixture
def readme_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary working folder in which ``scenarios/...`` resolves to the repository's scenarios."""
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_runs(block: str, readme_cwd: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(block, str(README), "exec"), namespace)
    tests = defined_tests(namespace)
    if not tests:
        return
    # the example is an analyst's pytest test that reads a saved baseline: save it first, as the
    # README says, from the same run (memoized, so the test function reuses it instead of re-running)
    namespace["run_scenario"] = cached_run_scenario
    res = eval(first_run_scenario_call(block), namespace)
    found = SAVE_CALL.search(README.read_text(encoding="utf-8"))
    assert found, "the README no longer says how to save the baseline its pytest example reads"
    call, target = found.groups()
    assert target in block, f"the README saves {target}, which its test example does not read"
    (readme_cwd / target).parent.mkdir(parents=True, exist_ok=True)
    exec(f"import simulator.experiments.baseline\n{call}", {"res": res})
    assert (readme_cwd / target).is_file()
    for test in tests:
        test()

