"""The search space of ``inmail-sim optimize``: levers as Optuna distributions, a trial's values as a policy.

A lever is a policy rule with a range or a list of choices (:class:`~simulator.scenario.optimize_schema.Lever`);
here it becomes an Optuna distribution, and a trial's parameter values become the base preset with
those rules overwritten (:func:`~simulator.scenario.optimize_schema.lever_policy`: the same builder
as a scenario's ``policies:``).  The sampler of generation ``g`` is seeded from
``design_rng(seed, PURPOSE_SEARCH)``'s ``g``-th draw, so a resumed search asks the same trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from simulator.core.config import Policy
from simulator.experiments.design import PURPOSE_SEARCH, design_rng
from simulator.scenario.optimize_schema import Lever, lever_policy, policy_block

if TYPE_CHECKING:
    import optuna



def distribution(lever: Lever) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of one lever."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if lever.kind == "choice":
        return CategoricalDistribution(list(lever.choices))
    assert lever.low is not None and lever.high is not None
    if lever.kind == "int":
        return IntDistribution(int(lever.low), int(lever.high))
    return FloatDistribution(float(lever.low), float(lever.high))


def distributions(levers: Sequence[Lever]) -> dict[str, optuna.distributions.BaseDistribution]:
    return {lever.path: distribution(lever) for lever in levers}


def lever_settings(params: Mapping[str, Any], levers: Sequence[Lever]) -> dict[str, Any]:
    """A trial's parameters as plain YAML-able values, in lever order (ints stay ints)."""
    out: dict[str, Any] = {}
    for lever in levers:
        value = params[lever.path]
        if lever.kind == "int":
            value = int(value)
        elif lever.kind == "float":  # 5 significant digits of the range: a rule an analyst can write down
            assert lever.low is not None and lever.high is not None
            value = round(float(value), 4 - math.floor(math.log10(lever.high - lever.low)))
        else:  # the choice itself (a numpy or pandas scalar back to the YAML value it stands for)
            value = next((c for c in lever.choices if c == value and type(c) is type(_plain(value))), value)
        out[lever.path] = value
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds."""
    return value.item() if hasattr(value, "item") else value


def trial_policy(label: str, base: str, settings: Mapping[str, Any]) -> Policy:
    """The policy of one trial (raises ``ValueError`` naming the rule if the combination is invalid)."""
    return lever_policy(label, base, settings)


def trial_block(base: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's policy block, ready to paste under a scenario's ``policies:``."""
    return policy_block(base, settings)


def generation_seed(seed: int, generation: int) -> int:
    """The sampler seed of generation ``generation`` (the same whether or not the search was interrupted)."""
    rng = design_rng(seed, PURPOSE_SEARCH)
    return int(rng.integers(0, 2**31 - 1, size=generation + 1)[generation])


def make_sampler(kind: str, population: int, seed: int) -> optuna.samplers.BaseSampler:
    """NSGA-II (or TPE); both read each trial's constraints (``Trial.set_constraint``, <= 0: met)."""
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=population)
    return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
