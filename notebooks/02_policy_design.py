# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Policy design: one rule at a time
#
# The 2015 policy changed several rules at once: the refund rule (on response within 90 days instead
# of on silence after 7), the allotments, the accrual (90-day expiry) and team pooling; the
# response-rate threshold stayed. Which rule does what?
#
# Starting from the 2015 preset, each variant below changes **one** rule. All variants run in one
# experiment on the same simulated market (common random numbers), so every variant is compared,
# replication by replication, against **both** presets: the 2014 policy (`old`) and the 2015 policy
# (`new`).

# %% tags=["parameters"]
# Parameters. The defaults are the real sizes (a few minutes on 2 cores); CI runs this notebook
# with the small values in brackets (papermill-style: this cell is tagged "parameters").
SCENARIO = "../scenarios/old_vs_new.yaml"   # relative to this folder
REPLICATIONS = 10        # per policy                                       [CI: 2]
MEMBERS = 100_000        # simulated members (the scenario's own number)    [CI: 2_000]
RECRUITER_SCALE = 1.0    # multiplies every recruiter group's count         [CI: 0.06]
HORIZON_DAYS = 365       # days of sending                                  [CI: 60]
WORKERS = 2              # worker processes; results do not depend on it    [CI: 1]

# %%
import dataclasses

import matplotlib.pyplot as plt
import pandas as pd

from simulator import load_scenario, preset, run_scenario

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)

base = load_scenario(SCENARIO)
SIZE = {"market.members.count": MEMBERS, "horizon_days": HORIZON_DAYS}
SIZE |= {f"market.recruiters.{g.name}.count": max(1, round(g.count * RECRUITER_SCALE))
         for g in base.market.recruiters if g.count > 0}

# %% [markdown]
# ## The variants
#
# Each entry is a policy written as in a scenario file (`preset` plus the rules that differ); it is
# added to the scenario next to `old` and `new` as an override `policies.<name>`.

# %%
OLD_ALLOTMENTS = dict(preset("old_2014").phase.allotments)

VARIANTS = {
    # the refund rule
    "window_30": {"preset": "new_2015", "refund": {"window_days": 30}},
    "window_180": {"preset": "new_2015", "refund": {"window_days": 180}},
    "refund_on_silence": {"preset": "new_2015", "refund": {"kind": "on_silence", "window_days": 7,
                                                             "latency_days": 0}},
    # the allotments
    "allot_2014": {"preset": "new_2015", "allotments": OLD_ALLOTMENTS},
    "recruiter_100": {"preset": "new_2015", "allotments": {"recruiter": 100}},
    # the accrual
    "no_expiry": {"preset": "new_2015", "accrual": {"kind": "unlimited"}},
    "cap_3_months": {"preset": "new_2015", "accrual": {"kind": "cap", "cap_months": 3}},
    # pooling and the threshold
    "no_pooling": {"preset": "new_2015", "pooling": False},
    "no_threshold": {"preset": "new_2015", "threshold": False},
}
overrides = SIZE | {f"policies.{name}": rule for name, rule in VARIANTS.items()}
sc = load_scenario(SCENARIO, overrides)
print(f"{len(sc.policies)} policies, {sc.market.members.count:,} members, {sc.market.recruiter_count:,} recruiters, "
      f"{sc.run.horizon_days} days, {REPLICATIONS} replications each")

# %% [markdown]
# ## Run
#
# One experiment: every policy faces the same members and recruiters in replication *i*.

# %%
res = run_scenario(SCENARIO, overrides, replications=REPLICATIONS, workers=WORKERS)

# %% [markdown]
# `res.comparison` compares every policy with the scenario's baseline (`old`). For the comparison
# against `new`, the same replications are compared with `new` as the baseline: a copy of the results
# whose scenario names `new` as baseline (no new simulation).

# %%
vs_old = res.comparison
vs_new = dataclasses.replace(res, scenario=dataclasses.replace(res.scenario, baseline="new")).comparison

KEY = ["response_rate", "net_credit_burn", "credits_per_response", "sent", "stockout_recruiter_days",
       "mean_member_fatigue"]
ORDER = ["new", *VARIANTS]


def table(comparison: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One metric: each policy's mean, difference to the baseline and its 95% interval."""
    c = comparison[comparison["metric"] == metric].set_index("policy")
    return c[["policy_mean", "diff", "ci_low", "ci_high", "rel_change"]]


both = pd.concat({"vs old": table(vs_old, "response_rate"), "vs new": table(vs_new, "response_rate")}, axis=1)
both.reindex(ORDER)

# %% [markdown]
# Net credit burn (credits spent minus credits refunded) — what the rule change costs recruiters:

# %%
both = pd.concat({"vs old": table(vs_old, "net_credit_burn"), "vs new": table(vs_new, "net_credit_burn")},
                 axis=1)
both.reindex(ORDER)

# %% [markdown]
# Every key metric, as the relative change against each preset:

# %%
rel = pd.concat({
    "vs old": vs_old[vs_old["metric"].isin(KEY)].pivot(index="policy", columns="metric", values="rel_change"),
    "vs new": vs_new[vs_new["metric"].isin(KEY)].pivot(index="policy", columns="metric", values="rel_change"),
}, axis=1)
(rel.reindex([p for p in ["old", *ORDER] if p in rel.index]) * 100).round(1)

# %% [markdown]
# ## Plot: each rule's effect against both presets
#
# Left: difference to the 2014 policy; right: difference to the 2015 policy. A variant whose interval
# on the right covers zero behaves like the 2015 policy: the rule it changes does not matter much here.

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey=True)
for row, (metric, unit, scale) in enumerate([("response_rate", "percentage points", 100),
                                              ("net_credit_burn", "credits", 1)]):
    for col, (label, comp) in enumerate([("vs old (2014)", vs_old), ("vs new (2015)", vs_new)]):
        ax = axes[row, col]
        c = comp[comp["metric"] == metric].set_index("policy").reindex(ORDER).dropna(subset=["diff"])
        y = [ORDER.index(p) for p in c.index]
        ax.errorbar(c["diff"] * scale, y, xerr=[(c["diff"] - c["ci_low"]) * scale, (c["ci_high"] - c["diff"]) * scale],
                    fmt="o", capsize=3)
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(range(len(ORDER)), ORDER)
        ax.set_title(f"{metric}, {label}")
        ax.set_xlabel(f"difference ({unit}, 95% CI)")
axes[0, 0].invert_yaxis()
fig.tight_layout()

# %% [markdown]
# ## Next
#
# * Any rule of `inmail-sim policies show new_2015` can be changed the same way; `inmail-sim policies diff
#   old_2014 new_2015` lists the rules that differ.
# * To keep a variant, put it in a scenario file under `policies:` and run it with `inmail-sim run`.
