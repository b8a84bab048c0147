"""Batched replications: InMails per second per core with K replications in one pass, against one at a time.

For each size, policy and batch size K a fresh child pinned to one CPU runs the same K replications
(seeds 1..K) unbatched (``run_replication`` one after the other) and batched (one
``run_replications`` call), in interleaved rounds, and reports the best CPU-time rate of each and
their ratio.  Measured in one child, so the ratio holds even when other load slows both; the
child's peak resident set is the batch's high-water mark (one pass of the batched engine plus the
results of all K; the batch is the child's largest allocation).
A batch the memory estimate says does not fit in the available memory is skipped, with a note.
"""

from __future__ import annotations

import time
from typing import Any

from bench_common import HORIZON_DAYS, SIZES, MiB, emit, peak_rss_bytes, rate_text, run_child, verdict
from bench_market import pinned_setup

BATCH_TARGETS: dict[str, float | None] = {"small": 6e6, "medium": 8e6, "large": None}
"""Batched InMails/s per core asked for; large: no slower than unbatched (the ratio)."""


def child_batch(size_name: str, policy_name: str, k: int, rounds: int) -> None:
    """Time ``k`` replications unbatched and batched, ``rounds`` times each, interleaved, in this process."""
    from simulator import run_replication
    from simulator.core.batch import ReplicationJob, run_replications

    pinned, _size, market, policy, run = pinned_setup(size_name, policy_name)
    jobs = [ReplicationJob(market, policy, run, 1 + i) for i in range(k)]
    alone: list[float] = []
    together: list[float] = []
    inmails = 0
    for _ in range(rounds):
        c0 = time.process_time()
        sent = [run_replication(j.market, j.policy, j.run, seed=j.seed).metrics["sent"] for j in jobs]
        alone.append(time.process_time() - c0)
        c0 = time.process_time()
        results = run_replications(jobs)
        together.append(time.process_time() - c0)
        inmails = int(sum(sent))
        assert [r.metrics["sent"] for r in results] == sent  # the same replications
    emit({"pinned": pinned, "inmails": inmails, "alone": alone, "together": together, "peak_rss": peak_rss_bytes()})


def batch_fits(size_name: str, policy_name: str, k: int) -> tuple[bool, str]:
    """Whether a batch of ``k`` fits the available memory twice over (the unbatched replications too)."""
    from bench_market import default_market

    from simulator import RunConfig, preset
    from simulator.scenario.memory import available_memory, replication_bytes

    size = SIZES[size_name]
    need = 2 * k * replication_bytes(default_market(size.recruiters, size.members), preset(policy_name),
                                     RunConfig(horizon_days=HORIZON_DAYS))
    have = available_memory()
    if have is None or need <= 0.8 * have:
        return True, ""
    return False, f"skipped: needs about {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available"


def report_batches(policies: list[str], sizes: list[str], batch_sizes: list[int], rounds: int,
                   report: dict[str, Any]) -> None:
    """Run and print the batched-throughput table (InMails/s per core, CPU time) and the ratios."""
    head = (f"{'policy':<10}{'size':<8}{'K':>4}{'InMails':>13}{'unbatched':>12}{'batched':>12}{'ratio':>7}"
            f"{'peak RSS':>11}  target")
    print("batched replications (InMails per second of CPU time, one core; best of "
          f"{rounds} interleaved round(s) of each):")
    print(head)
    print("-" * len(head))
    out: dict[str, Any] = {}
    for pol in policies:
        for name in sizes:
            for k in batch_sizes:
                fits, why = batch_fits(name, pol, k)
                if not fits:
                    print(f"{pol:<10}{name:<8}{k:>4}  {why}")
                    out[f"{pol}/{name}/{k}"] = {"skipped": why}
                    continue
                r = run_child("batch", name, pol, str(k), str(rounds))
                alone = r["inmails"] / min(r["alone"])
                together = r["inmails"] / min(r["together"])
                target = BATCH_TARGETS[name]
                if k == 1:
                    verdict_text = "-"
                elif target is None:
                    verdict_text = f">= unbatched {verdict(together >= 0.97 * alone)}"
                else:
                    verdict_text = f">= {target / 1e6:.0f} M/s {verdict(together >= target)}"
                print(f"{pol:<10}{name:<8}{k:>4}{r['inmails']:>13,}{rate_text(alone):>12}{rate_text(together):>12}"
                      f"{together / alone:>6.2f}x{r['peak_rss'] / MiB:>8.0f} MiB  {verdict_text}")
                out[f"{pol}/{name}/{k}"] = {**r, "rate_unbatched": alone, "rate_batched": together}
    report["batches"] = out
    print("  unbatched: the K replications one after the other (run_replication); batched: one run_replications"
          " call;\n  ratio = batched / unbatched rate, measured in the same child (robust to other load);"
          " peak RSS: the child's\n  high-water mark (the batch; an idle interpreter with the simulator is about"
          " 60-70 MiB)\n")
