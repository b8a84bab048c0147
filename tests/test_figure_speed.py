"""The fast paths of the report's figures draw what the plain paths draw (structure, not time).

The speed itself is measured by ``benchmarks/bench_figures.py``, never by a timed test.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scenario_helpers import tiny, write_yaml

from simulator.api import Results, run_scenario
from simulator.cli import main
from simulator.io import plotting
from simulator.io.plotting import report_figures


@pytest.fixture(scope="module")
def res() -> Results:
    return run_scenario(tiny(), {"horizon_days": 30}, replications=3)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def _savefig_png(fig: object, dpi: int) -> bytes:
    """The figure through matplotlib's own ``savefig`` (layout engine on: draw, lay out, draw)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")  # type: ignore[attr-defined]
    return buffer.getvalue()


@pytest.mark.parametrize("name", [spec.name for spec in report_figures.FIGURES])
def test_render_png_gives_the_pixels_of_savefig(res: Results, name: str) -> None:
    make = next(spec.make for spec in report_figures.FIGURES if spec.name == name)
    fast = plotting.render_png(make(res), dpi=50)
    np.testing.assert_array_equal(_pixels(fast), _pixels(_savefig_png(make(res), 50)))


def test_render_png_leaves_the_figure_as_it_was(res: Results) -> None:
    fig = plotting.threshold(res)
    engine, dpi = fig.get_layout_engine(), fig.dpi
    plotting.render_png(fig, dpi=40)
    assert fig.get_layout_engine() is engine
    assert fig.dpi == dpi
    assert _pixels(plotting.render_png(fig, dpi=40)).shape == _pixels(_savefig_png(fig, 40)).shape


def test_figures_drawn_in_parallel_equal_those_drawn_serially(res: Results) -> None:
    serial = plotting.render_figures(res, dpi=40)
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = plotting.render_figures(res, dpi=40, executor=pool)
    assert list(parallel) == list(serial) == [spec.name for spec in report_figures.FIGURES]
    for name in serial:
        np.testing.assert_array_equal(_pixels(parallel[name]), _pixels(serial[name]), err_msg=name)


def _broken_figure(_: Results) -> None:
    raise RuntimeError("no such panel")


def test_a_figure_failing_in_a_worker_costs_only_itself(res: Results, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = report_figures.FigureSpec("broken", "Broken", "fails", _broken_figure)  # type: ignore[arg-type]
    monkeypatch.setattr(report_figures, "FIGURES", (*report_figures.FIGURES[:2], broken))
    errors: dict[str, str] = {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        pngs = plotting.render_figures(res, dpi=30, errors=errors, executor=pool)
    assert list(pngs) == ["rates", "credits"]
    assert errors == {"broken": "RuntimeError: no such panel"}


def test_run_with_two_workers_writes_the_figures_of_a_serial_run(tmp_path: Path) -> None:
    scenario = write_yaml(tmp_path / "tiny.yaml", tiny(horizon_days=30, replications=2))
    images = {}
    for workers in (1, 2):
        out = tmp_path / f"run{workers}"
        assert main(["run", str(scenario), "--out", str(out), "--workers", str(workers),
                     "--quiet", "--no-progress"]) == 0
        images[workers] = {png.name: _pixels(png.read_bytes()) for png in sorted((out / "figures").glob("*.png"))}
    assert sorted(images[2]) == sorted(f"{spec.name}.png" for spec in report_figures.FIGURES)
    assert images[2].keys() == images[1].keys()
    for name, pixels in images[2].items():
        np.testing.assert_array_equal(pixels, images[1][name], err_msg=name)


def test_the_forked_figure_pool_draws_the_serial_images_without_pickling_the_results(
        res: Results, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.io.plotting import figure_pool

    if figure_pool.pool_size(len(report_figures.FIGURES)) == 0:
        pytest.skip("one core or no fork on this machine: the figures are drawn serially (nothing to compare)")

    def refuse(*_: object) -> None:
        raise AssertionError("the results were pickled")

    serial = report_figures.render_figures(res)
    with figure_pool.figure_pool(res, len(report_figures.FIGURES)) as pool:
        assert pool is not None
        monkeypatch.setattr(type(res), "__reduce_ex__", refuse, raising=False)
        forked = report_figures.render_figures(res, executor=pool)
    assert list(forked) == list(serial)
    for name in serial:
        assert np.array_equal(_pixels(forked[name]), _pixels(serial[name])), name
    assert figure_pool._SHARED is None  # released with the pool


def test_no_pool_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.io.plotting import figure_pool

    monkeypatch.setattr(figure_pool.os, "cpu_count", lambda: 1)
    assert figure_pool.pool_size(6) == 0
    with figure_pool.figure_pool(object(), 6) as pool:
        assert pool is None
