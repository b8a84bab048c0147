"""Approximate Bayesian computation on an abstract distance: space-filling rejection, then ABC-SMC.

The algorithm knows nothing of the simulator.  It sees priors (objects with ``ppf`` and
``logpdf``, e.g. :class:`simulator.scenario.uncertain.Prior`) and an :data:`Evaluate` callback
that maps a batch of parameter vectors to distances (0 = the simulated figures meet every
observation band).  With uniform observation error on a band, the likelihood of a world is the
indicator of its simulated values lying in the band, so the posterior is the prior restricted to
``distance == 0``: the ABC posterior at tolerance 0 is exact, not an approximation of one.

* Stage 1 (:func:`rejection`): a space-filling design over the priors (LHS or Sobol through each
  prior's ``ppf``); worlds at distance 0 are accepted with equal weights.
* Stage 2 (:func:`smc`), when stage 1 accepts too few: ABC population Monte Carlo (Beaumont et al.
  2009) starting from stage 1's best worlds - tolerance schedule the weighted median of the previous
  generation's distances (floored at 0, and 0 once half the particles are at 0), proposals from the
  weighted particles perturbed by a multivariate normal with the optimal local covariance of Filippi
  et al. (2013) (or twice the weighted covariance, Beaumont et al. 2009), importance weights prior /
  kernel mixture, effective sample size, and systematic resampling when it falls under half the
  particles.

Own numpy code rather than pyabc: the algorithm is a hundred lines, every random number comes
from the caller's generator (reproducible with the scenario's seed streams), proposals are made in
deterministic batches (the same posterior serially or on any executor), and pyabc would pull in
a database and distributed-queue stack the project does not otherwise need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.stats import qmc

Evaluate = Callable[[str, np.ndarray, float], np.ndarray]
"""``evaluate(label, thetas (m x k), tolerance) -> distances (m,)``: ``label`` names the batch (the
caller keys stored results by it and the row index); ``tolerance`` lets it stop simulating a world
that is already far outside (early rejection), returning any distance above the tolerance."""


class PriorLike(Protocol):
    def ppf(self, u: np.ndarray) -> np.ndarray: ...

    def logpdf(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Generation:
    """One stage or SMC generation: its tolerance, how many worlds it proposed and accepted, its ESS."""

    stage: int
    tolerance: float
    proposed: int
    accepted: int
    ess: float

    @property
    def acceptance(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0


@dataclass
class AbcResult:
    """The weighted posterior sample (``thetas`` rows, ``weights`` summing to 1) and how it was made."""

    thetas: np.ndarray
    weights: np.ndarray
    distances: np.ndarray
    generations: list[Generation] = field(default_factory=list)
    simulations: int = 0
    converged: bool = True
    design_at_zero: int = 0
    """How many stage-1 design worlds met every band (distance 0)."""

    @property
    def stage(self) -> int:
        """1 if the space-filling design alone gave the posterior, 2 if ABC-SMC was needed."""
        return max((g.stage for g in self.generations), default=1)

    @property
    def ess(self) -> float:
        return effective_sample_size(self.weights)

    @property
    def tolerance(self) -> float:
        """The tolerance the returned population meets (a generation that accepted nothing is skipped)."""
        return next((g.tolerance for g in reversed(self.generations) if g.accepted), math.inf)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2``."""
    w = np.asarray(weights, dtype=np.float64)
    return float(w.sum() ** 2 / np.sum(w**2)) if w.size and np.any(w > 0) else 0.0


def prior_design(priors: Sequence[PriorLike], n: int, rng: np.random.Generator, method: str = "lhs") -> np.ndarray:
    """``n`` space-filling worlds (rows) over the priors: a scrambled LHS or Sobol design through each ``ppf``."""
    k = len(priors)
    if method == "sobol":
        u = qmc.Sobol(k, scramble=True, seed=rng).random(n)
    else:
        u = qmc.LatinHypercube(k, seed=rng).random(n)
    return np.column_stack([p.ppf(u[:, j]) for j, p in enumerate(priors)])


def prior_logpdf(priors: Sequence[PriorLike], thetas: np.ndarray) -> np.ndarray:
    """Joint log prior density of each row (independent priors)."""
    return np.sum([p.logpdf(thetas[:, j]) for j, p in enumerate(priors)], axis=0)


def rejection(evaluate: Evaluate, priors: Sequence[PriorLike], n_design: int, rng: np.random.Generator,
              method: str = "lhs") -> tuple[np.ndarray, np.ndarray]:
    """Stage 1: the design's worlds and their distances (tolerance 0 for early rejection)."""
    thetas = prior_design(priors, n_design, rng, method)
    return thetas, np.asarray(evaluate("design", thetas, 0.0), dtype=np.float64)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The ``q`` quantile of ``values`` under ``weights`` (the smallest value with cumulative weight >= q)."""
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / np.sum(weights)
    return float(values[order][min(int(np.searchsorted(cum, q - 1e-12)), len(values) - 1)])


def _systematic(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a systematic resample of the normalised ``weights``."""
    n = len(weights)
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), n - 1)


def kernel_covariance(thetas: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Twice the weighted covariance of the particles (Beaumont et al. 2009), kept positive definite."""
    w = weights / weights.sum()
    mean = w @ thetas
    centred = thetas - mean
    cov = 2.0 * (centred * w[:, None]).T @ centred / max(1e-12, 1.0 - np.sum(w**2))
    jitter = 1e-10 * max(1e-12, float(np.max(np.diag(cov))))
    return cov + jitter * np.eye(thetas.shape[1])


def local_covariances(thetas: np.ndarray, weights: np.ndarray, distances: np.ndarray,
                      tolerance: float) -> np.ndarray:
    """Filippi et al. (2013) optimal local covariance: for particle i, the weighted second moment of the
    particles already within the new ``tolerance`` about particle i (``cov~ + (mean~ - theta_i)(...)^T``).

    Shaped like the region the next generation must hit (along a ridge, not across it), so more
    proposals are accepted than with twice the global covariance.  Falls back to that when fewer
    than two particles are within the tolerance."""
    near = distances <= tolerance
    n, k = thetas.shape
    if near.sum() < 2:
        return np.broadcast_to(kernel_covariance(thetas, weights), (n, k, k)).copy()
    w = weights[near] / weights[near].sum()
    sub = thetas[near]
    mean = w @ sub
    centred = sub - mean
    base = (centred * w[:, None]).T @ centred
    offset = mean - thetas
    covs = base[None, :, :] + offset[:, :, None] * offset[:, None, :]
    jitter = 1e-10 * max(1e-12, float(np.max(np.diag(kernel_covariance(thetas, weights)))))
    return covs + jitter * np.eye(k)[None, :, :]


KERNEL_FLOOR = 0.02
"""The kernel's standard deviation along each parameter is at least this share of the prior's 90% range:
a population resampled onto a few distinct worlds would otherwise propose copies of them (a local
covariance of zero), and its importance weights would collapse onto a handful of worlds."""


def prior_scales(priors: Sequence[PriorLike]) -> np.ndarray:
    """Each prior's 5%-95% range (its scale for the kernel floor)."""
    q = np.array([[float(v) for v in p.ppf(np.array([0.05, 0.95]))] for p in priors])
    return np.maximum(q[:, 1] - q[:, 0], 1e-12)


def floored(covs: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``covs`` (n, k, k) with each variance raised to at least ``(KERNEL_FLOOR * scale)^2`` (positive definite)."""
    floor = (KERNEL_FLOOR * scales) ** 2
    diag = np.diagonal(covs, axis1=1, axis2=2)
    add = np.maximum(floor[None, :] - diag, 0.0)
    out = np.array(covs, dtype=np.float64, copy=True)
    k = len(scales)
    out[:, np.arange(k), np.arange(k)] += add
    return out


def truncated_weights(raw: np.ndarray) -> np.ndarray:
    """Normalised importance weights, none above sqrt(n) times the mean weight 1/n (truncated importance
    sampling, Ionides 2008, with the cap on the normalised weights so that one extreme weight cannot
    lift its own cap).

    In a dozen dimensions the prior over kernel-mixture ratio varies over orders of magnitude: a
    proposal in the mixture's thin tail takes most of the weight and a population of 200 worlds
    carries the information of four.  The cap trades a small bias, vanishing as n grows, for that
    variance.  The level tau with max(min(raw, tau)) / sum(min(raw, tau)) = 1/sqrt(n) is found by
    bisection."""
    w = np.asarray(raw, dtype=np.float64) / float(np.sum(raw))
    root_n = math.sqrt(len(w))
    if float(np.max(w)) * root_n <= 1.0:
        return w
    lo, hi = 0.0, float(np.max(w))  # sum(min(w, tau)) - sqrt(n) tau: > 0 just above 0, <= 0 at the top
    for _ in range(100):
        tau = 0.5 * (lo + hi)
        if float(np.sum(np.minimum(w, tau))) > root_n * tau:
            lo = tau
        else:
            hi = tau
    capped = np.minimum(w, hi)
    return capped / capped.sum()


def next_tolerance(distances: np.ndarray, weights: np.ndarray, quantile: float) -> float:
    """The next generation's tolerance: the weighted ``quantile`` of the distances; when that cannot make
    progress (it equals the largest distance) the next lower distance, but never below half the current
    tolerance (a jump straight to 0 from a population with tied distances accepts nothing)."""
    tolerance = max(0.0, weighted_quantile(distances, weights, quantile))
    top = float(np.max(distances))
    if tolerance >= top and tolerance > 0:
        lower = float(np.max(distances[distances < tolerance], initial=0.0))
        tolerance = max(lower, 0.5 * top)
    return tolerance


def _mixture_logpdf(x: np.ndarray, centres: np.ndarray, weights: np.ndarray, chols: np.ndarray) -> np.ndarray:
    """log sum_j w_j N(x_i; centre_j, L_j L_j^T) for each row ``x_i`` (``chols``: one Cholesky factor per centre)."""
    k = centres.shape[1]
    log_det = 2.0 * np.sum(np.log(np.diagonal(chols, axis1=1, axis2=2)), axis=1)
    inv = np.linalg.inv(chols)
    logw = np.log(np.maximum(weights / weights.sum(), 1e-300)) - 0.5 * log_det - 0.5 * k * math.log(2 * math.pi)
    out = np.empty(len(x))
    for i, row in enumerate(x):
        z = np.einsum("jab,jb->ja", inv, row - centres)
        terms = logw - 0.5 * np.sum(z**2, axis=1)
        top = float(np.max(terms))
        out[i] = top + math.log(float(np.sum(np.exp(terms - top))))
    return out


@dataclass(frozen=True)
class SmcSettings:
    """ABC-SMC settings: target population, quantile of the schedule, limits."""

    particles: int
    quantile: float = 0.5
    max_generations: int = 12
    min_acceptance: float = 0.005
    batch_min: int = 32
    batch_max: int = 20_000
    kernel: str = "olcm"
    """``olcm``: Filippi et al. (2013) optimal local covariance; ``2cov``: twice the weighted covariance."""

    def __post_init__(self) -> None:
        if self.particles < 1:
            raise ValueError(f"particles must be >= 1, got {self.particles}")
        if self.kernel not in ("olcm", "2cov"):
            raise ValueError(f"kernel must be olcm or 2cov, got {self.kernel!r}")
        if not 0.0 < self.quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")


def _propose(rng: np.random.Generator, priors: Sequence[PriorLike], thetas: np.ndarray, weights: np.ndarray,
             chols: np.ndarray, m: int) -> np.ndarray:
    """``m`` proposals inside the prior support: a weighted particle plus its kernel's normal perturbation."""
    out = np.empty((0, thetas.shape[1]))
    while len(out) < m:
        picks = rng.choice(len(thetas), size=m, p=weights / weights.sum())
        z = rng.standard_normal((m, thetas.shape[1]))
        cand = thetas[picks] + np.einsum("mab,mb->ma", chols[picks], z)
        cand = cand[np.isfinite(prior_logpdf(priors, cand))]
        out = np.vstack([out, cand])
    return out[:m]


def smc(evaluate: Evaluate, priors: Sequence[PriorLike], thetas: np.ndarray, distances: np.ndarray,
        weights: np.ndarray, settings: SmcSettings, rng_for: Callable[[int, int], np.random.Generator],
        progress: Callable[[Generation], None] | None = None) -> AbcResult:
    """Stage 2: ABC-SMC from a weighted population at tolerance ``max(distances)`` down to tolerance 0.

    ``rng_for(generation, batch)`` gives the generator of each proposal batch, so the proposals do
    not depend on how many workers evaluate them.  Worlds are accepted in proposal order until the
    generation has ``settings.particles``; a batch's size is set from the previous acceptance rate.
    """
    n = settings.particles
    scales = prior_scales(priors)
    gens: list[Generation] = []
    simulations = 0
    converged = True
    for t in range(1, settings.max_generations + 1):
        tolerance = next_tolerance(distances, weights, settings.quantile)
        if settings.kernel == "olcm":
            covs = local_covariances(thetas, weights, distances, tolerance)
        else:
            shared = kernel_covariance(thetas, weights)
            covs = np.broadcast_to(shared, (len(thetas), *shared.shape))
        chols = np.linalg.cholesky(floored(covs, scales))
        kept_t: list[np.ndarray] = []
        kept_d: list[np.ndarray] = []
        proposed = 0
        rate = max(float(np.mean(distances <= tolerance)), 0.05)
        batch, m = 0, settings.batch_max
        while sum(len(x) for x in kept_t) < n:
            need = n - sum(len(x) for x in kept_t)
            # sized from the acceptance so far; at most 4x the previous batch (a rate of 0 is not trusted)
            m = int(min(settings.batch_max, 4 * m, max(settings.batch_min, math.ceil(1.2 * need / rate))))
            cand = _propose(rng_for(t, batch), priors, thetas, weights, chols, m)
            d = np.asarray(evaluate(f"g{t:02d}b{batch:03d}", cand, tolerance), dtype=np.float64)
            simulations += m
            ok = np.flatnonzero(d <= tolerance)[:need]
            used = int(ok[-1]) + 1 if len(ok) == need else m  # proposals up to the last one accepted count
            proposed += used
            kept_t.append(cand[ok])
            kept_d.append(d[ok])
            rate = (sum(len(x) for x in kept_t) + 1) / (proposed + 2)
            batch += 1
            if rate < settings.min_acceptance and proposed >= 10 * n:
                converged = False
                break
        if not any(len(x) for x in kept_t):  # stopped with no world accepted: keep the last population
            gens.append(Generation(2, tolerance, proposed, 0, 0.0))
            if progress is not None:
                progress(gens[-1])
            converged = False
            break
        new_t, new_d = np.vstack(kept_t), np.concatenate(kept_d)
        log_w = prior_logpdf(priors, new_t) - _mixture_logpdf(new_t, thetas, weights, chols)
        new_w = truncated_weights(np.exp(log_w - np.max(log_w)))
        gen = Generation(2, tolerance, proposed, len(new_t), effective_sample_size(new_w))
        gens.append(gen)
        if progress is not None:
            progress(gen)
        thetas, distances, weights = new_t, new_d, new_w
        if not converged or tolerance == 0.0:
            break
        if gen.ess < 0.5 * len(weights):
            idx = _systematic(weights, rng_for(t, 999))
            thetas, distances = thetas[idx], distances[idx]
            weights = np.full(len(idx), 1.0 / len(idx))
    else:
        converged = False
    final = next((g for g in reversed(gens) if g.accepted), None)
    return AbcResult(thetas, weights, distances, gens, simulations,
                     converged and final is not None and final.tolerance == 0.0)


def abc_posterior(evaluate: Evaluate, priors: Sequence[PriorLike], particles: int, n_design: int,
                  rng: np.random.Generator, method: str = "lhs", settings: SmcSettings | None = None,
                  progress: Callable[[Generation], None] | None = None) -> AbcResult:
    """Stage 1, then stage 2 if stage 1 accepted fewer than ``particles`` worlds at distance 0."""
    if particles < 1 or n_design < 1:
        raise ValueError(f"particles and n_design must be >= 1, got {particles} and {n_design}")
    base = int(rng.integers(2**62))

    def rng_for(generation: int, batch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(base, spawn_key=(generation, batch)))

    thetas, d = rejection(evaluate, priors, n_design, rng_for(0, 0), method)
    accepted = d <= 0.0
    if accepted.sum() >= particles:
        first = Generation(1, 0.0, n_design, int(accepted.sum()), float(accepted.sum()))
        if progress is not None:
            progress(first)
        w = np.full(int(accepted.sum()), 1.0 / accepted.sum())
        return AbcResult(thetas[accepted], w, d[accepted], [first], n_design, True, int(accepted.sum()))
    settings = settings or SmcSettings(particles)
    best = np.argsort(d, kind="stable")[:particles]
    first = Generation(1, float(np.max(d[best])), n_design, len(best), float(len(best)))
    if progress is not None:
        progress(first)
    start_w = np.full(len(best), 1.0 / len(best))
    result = smc(evaluate, priors, thetas[best], d[best], start_w, settings, rng_for, progress)
    result.generations.insert(0, first)
    result.simulations += n_design
    result.design_at_zero = int(accepted.sum())
    return result
