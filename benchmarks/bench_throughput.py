"""Throughput and memory: InMails per second and peak resident set of one replication per size.

Every size runs in a fresh child process pinned to one CPU, so that its ``ru_maxrss`` is the
high-water mark of that size alone; an idle interpreter is measured the same way (the baseline).
Also the speed ratio of the engine to the naive per-message reference (``naive_reference``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench_common import (
    HORIZON_DAYS,
    REFERENCE_UNIFORM_RATE,
    SIZES,
    GiB,
    MiB,
    emit,
    peak_rss_bytes,
    pin_one_cpu,
    rate_text,
    run_child,
    uniform_rate,
    verdict,
)
from bench_market import pinned_setup

# --------------------------------------------------------------------------- children


def child_baseline(what: str) -> None:
    """Idle interpreter with numpy (``numpy``) or with the whole simulator (``simulator``) imported."""
    t0 = time.perf_counter()
    import numpy as np

    if what == "simulator":
        import simulator  # noqa: F401

    np.zeros(1).sum()
    emit({"peak_rss": peak_rss_bytes(), "import_seconds": time.perf_counter() - t0})


def child_size(size_name: str, policy_name: str, reps: int) -> None:
    """Run ``reps`` replications of one size in this (fresh, pinned) process."""
    from simulator import run_replication

    pinned, _size, market, policy, run = pinned_setup(size_name, policy_name)
    inmails, walls, cpus = [], [], []
    extra: dict[str, float] = {}
    speed_before = uniform_rate()
    for i in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_replication(market, policy, run, seed=1 + i)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        inmails.append(int(res.metrics["sent"]))
        if i == 0:
            extra = {k: float(res.metrics[k]) for k in ("response_rate", "sent_bulk", "warnings",
                                                       "improvement_periods", "stockout_recruiter_days")}
    emit({"inmails": inmails, "walls": walls, "cpu": cpus, "peak_rss": peak_rss_bytes(), "pinned": pinned,
          "first": extra, "uniform_rate": max(speed_before, uniform_rate())})


def child_naive(size_name: str, reps: int) -> None:
    """Naive per-message reference vs engine on the simplified model of ``naive_reference``."""
    from naive_reference import SimpleModel, run_engine, run_naive

    from simulator import RefundRule

    pinned = pin_one_cpu()
    size = SIZES[size_name]
    model = SimpleModel(recruiters=size.recruiters, members=size.members, horizon_days=HORIZON_DAYS)
    rule = RefundRule("on_response", 90, 1)
    run_engine(SimpleModel(recruiters=10, members=100, horizon_days=5), rule, 0)  # warm-up: lazy imports
    naive = [run_naive(model, rule, 1 + i) for i in range(reps)]
    engine = [run_engine(model, rule, 1 + i) for i in range(reps)]
    emit({
        "pinned": pinned,
        "naive": {"inmails": sum(t.sent for t in naive), "wall": sum(t.wall_seconds for t in naive),
                  "response_rate": naive[0].response_rate, "refund_fraction": naive[0].refund_fraction},
        "engine": {"inmails": sum(t.sent for t in engine), "wall": sum(t.wall_seconds for t in engine),
                   "response_rate": engine[0].response_rate, "refund_fraction": engine[0].refund_fraction},
    })


# --------------------------------------------------------------------------- reports


def report_baseline(report: dict[str, Any]) -> float:
    """Measure and print the idle interpreter's peak RSS; returns the one with the simulator imported."""
    b_np, b_sim = run_child("baseline", "numpy"), run_child("baseline", "simulator")
    report["baseline"] = {"numpy": b_np, "simulator": b_sim}
    print(f"baseline peak RSS of an idle interpreter: {b_np['peak_rss'] / MiB:.1f} MiB with numpy imported "
          f"({b_np['import_seconds']:.2f} s to import), {b_sim['peak_rss'] / MiB:.1f} MiB with `import simulator` "
          f"({b_sim['import_seconds']:.2f} s to import)\n")
    return float(b_sim["peak_rss"])


def report_sizes(policies: list[str], sizes: list[str], reps: int, base_sim: float, report: dict[str, Any]) -> None:
    """Run and print the throughput table: every size under every policy, fastest of ``reps``."""
    head = (f"{'policy':<10}{'size':<8}{'recruiters':>11}{'members':>11}{'InMails':>13}{'/rec-day':>9}{'wall s':>8}"
            f"{'cpu%':>6}{'InMails/s':>12}{'(median)':>11}  {'target':<17}{'peak RSS':>10}{'model':>10}"
            f"  {'target':<16}")
    print(head)
    print("-" * len(head))
    speeds: list[tuple[str, str, float, float]] = []
    for pol in policies:
        if pol == "old_2014":
            print("(old_2014 has no pooling: every other mechanism is on)")
        for name in sizes:
            sz = SIZES[name]
            r = run_child("size", name, pol, str(reps))
            walls, inmails = r["walls"], r["inmails"]
            rates = [n / w for n, w in zip(inmails, walls, strict=True)]
            best = max(range(len(rates)), key=rates.__getitem__)
            rate, wall, n_best = rates[best], walls[best], inmails[best]
            peak = r["peak_rss"]
            t_rate = "-" if sz.target_rate is None else \
                f">= {sz.target_rate / 1e6:.0f} M/s {verdict(rate >= sz.target_rate)}"
            t_mem = "-" if sz.target_peak_bytes is None else \
                f"<= {sz.target_peak_bytes / GiB:.0f} GiB {verdict(peak <= sz.target_peak_bytes)}"
            print(f"{pol:<10}{name:<8}{sz.recruiters:>11,}{sz.members:>11,}{n_best:>13,}"
                  f"{n_best / (sz.recruiters * HORIZON_DAYS):>9.2f}{wall:>8.2f}{r['cpu'][best] / wall * 100:>6.0f}"
                  f"{rate_text(rate):>12}"
                  f"{rate_text(statistics.median(rates)):>11}  {t_rate:<17}"
                  f"{peak / MiB:>7.0f} MiB"
                  f"{(peak - base_sim) / MiB:>6.0f} MiB  {t_mem:<16}")
            report["sizes"][f"{pol}/{name}"] = {**r, "rate_best": rate, "rate_median": statistics.median(rates)}
            speeds.append((pol, name, rate, r["uniform_rate"]))
    print(f"  InMails, wall s, InMails/s: the fastest of {reps} replication(s) (seeds 1..{reps};"
          " the least disturbed by other load), then the median rate;\n"
          "  /rec-day: InMails per recruiter per day (about half the engine's cost is per recruiter-day);"
          " cpu%: CPU time / wall\n"
          "  (well under 100%: the child waited for its CPU, other load distorted the figure);\n"
          "  peak RSS: high-water mark of the child process;"
          " model = peak RSS minus the idle interpreter after `import simulator`")
    print("  machine speed, measured in each child before and after its replications (numpy uniform doubles/s,\n"
          "  the faster of the two; the targets were set on a machine drawing"
          f" {REFERENCE_UNIFORM_RATE / 1e6:.0f} M/s), and the rate scaled to that\n"
          "  machine's speed (the verdicts above use the raw rate):")
    for pol, name, rate, urate in speeds:
        print(f"    {pol:<10}{name:<8} {urate / 1e6:6.0f} M uniforms/s  ->  "
              f"{rate_text(rate * REFERENCE_UNIFORM_RATE / urate)} at the reference speed")
    print()


def report_naive(size_name: str, report: dict[str, Any]) -> None:
    """Run and print the naive per-message reference against the engine on ``size_name``."""
    nv = run_child("naive", size_name, "1")
    report["naive"] = nv
    n, e = nv["naive"], nv["engine"]
    n_rate, e_rate = n["inmails"] / n["wall"], e["inmails"] / e["wall"]
    print(f"naive per-message simpy reference vs vectorized engine, same simplified model "
          f"({size_name}: {SIZES[size_name].recruiters:,} recruiters, "
          f"{SIZES[size_name].members:,} members, {HORIZON_DAYS} days, refund on response 90 d)")
    print(f"  naive : {n['inmails']:>11,} InMails {n['wall']:8.2f} s {rate_text(n_rate):>11}   "
          f"response rate {n['response_rate']:.4f}, refund fraction {n['refund_fraction']:.4f}")
    print(f"  engine: {e['inmails']:>11,} InMails {e['wall']:8.2f} s {rate_text(e_rate):>11}   "
          f"response rate {e['response_rate']:.4f}, refund fraction {e['refund_fraction']:.4f}")
    print(f"  speed ratio engine / naive: {e_rate / n_rate:,.0f}x\n")
