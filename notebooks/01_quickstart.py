# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Quickstart: the 2014 rule against the 2015 rule
#
# Load the main scenario (`scenarios/old_vs_new.yaml`), run it, read the comparison and plot it.
#
# * **old** (2014): an InMail with *no response within 7 days* is credited back.
# * **new** (2015): an InMail with *a response within 90 days* is credited back; larger allotments,
#   credits expire after 90 days, team pooling.
#
# Both policies run on the **same** simulated market in every replication (common random numbers), so
# each difference below is paired replication by replication. Every number comes from the public API
# (`from simulator import ...`); no model logic lives in this notebook.

# %% tags=["parameters"]
# Parameters. The defaults are the real sizes (about a minute on 2 cores); CI runs this notebook
# with the small values in brackets (papermill-style: this cell is tagged "parameters").
SCENARIO = "../scenarios/old_vs_new.yaml"   # relative to this folder
REPLICATIONS = 20        # per policy                                       [CI: 2]
MEMBERS = 100_000        # simulated members (the scenario's own number)    [CI: 2_000]
RECRUITER_SCALE = 1.0    # multiplies every recruiter group's count         [CI: 0.06]
HORIZON_DAYS = 365       # days of sending                                  [CI: 60]
WORKERS = 2              # worker processes; results do not depend on it    [CI: 1]

# %%
import matplotlib.pyplot as plt
import pandas as pd

from simulator import METRIC_NAMES, load_scenario, run_scenario

pd.set_option("display.width", 140)
pd.set_option("display.max_columns", 20)

# %% [markdown]
# ## The scenario
#
# `load_scenario` validates the file (every problem is reported with its line). The size parameters
# above become `--set`-style overrides: a mapping from dotted paths to values.

# %%
base = load_scenario(SCENARIO)
SIZE = {"market.members.count": MEMBERS, "horizon_days": HORIZON_DAYS}
SIZE |= {f"market.recruiters.{g.name}.count": max(1, round(g.count * RECRUITER_SCALE))
         for g in base.market.recruiters if g.count > 0}

sc = load_scenario(SCENARIO, SIZE)
print(f"{sc.name}: {sc.description}\n")
print(f"{sc.run.horizon_days} days from {sc.run.start_date}, {sc.market.members.count:,} members, "
      f"{sc.market.recruiter_count:,} recruiters in {len(sc.market.recruiters)} groups")
for name in sc.policy_names:
    print(f"  {name:>4}{' (baseline)' if name == sc.baseline else '           '}: {sc.policies[name].description}")

# %% [markdown]
# ## Run it
#
# `run_scenario` runs every policy for `REPLICATIONS` replications and returns a `Results` object of
# pandas DataFrames. `res.table()` is what `inmail-sim run` prints.

# %%
res = run_scenario(SCENARIO, SIZE, replications=REPLICATIONS, workers=WORKERS)
print(res.table())

# %% [markdown]
# ## Reading the comparison
#
# `res.comparison` has one row per metric and non-baseline policy: `diff` is the mean of
# (new - old) over replications, `ci_low`/`ci_high` its 95% interval, `rel_change` the difference
# relative to the old policy's mean, `p_value` the paired t-test. A difference whose interval
# excludes zero is `significant`.

# %%
KEY = ["response_rate", "acceptance_rate", "sent", "sent_bulk", "net_credit_burn", "credits_per_response",
       "stockout_recruiter_days", "unanswered_per_active_member", "mean_member_fatigue"]
comp = res.comparison.set_index("metric").loc[KEY]
comp[["policy", "baseline_mean", "policy_mean", "diff", "ci_low", "ci_high", "rel_change", "p_value",
      "significant"]]

# %% [markdown]
# Means per policy, with their own 95% intervals (`res.summary`, one row per policy and metric):

# %%
summary = res.summary[res.summary["metric"].isin(KEY)]
summary.pivot(index="metric", columns="policy", values="mean").loc[KEY, sc.policy_names]

# %% [markdown]
# Common random numbers make the paired intervals much narrower than comparing two independent
# samples would (`ci_shrink` = how much narrower):

# %%
res.pairing()

# %% [markdown]
# ## Who wins, who loses
#
# `res.breakdown(by)` compares the policies within recruiter subgroups: by `seat_type`,
# `personalization_band` (the recruiter's initial personalization: low / mid / high), `behaviour`
# (fixed / adaptive) or `group` (the scenario's recruiter groups).

# %%
band = res.breakdown("personalization_band")
band[band["metric"].isin(["response_rate", "net_credit_burn_per_recruiter", "sent_per_recruiter"])][
    ["label", "metric", "baseline_mean", "policy_mean", "diff", "ci_low", "ci_high"]]

# %%
seat = res.breakdown("seat_type")
seat[seat["metric"] == "net_credit_burn_per_recruiter"][["label", "baseline_mean", "policy_mean", "diff",
                                                          "ci_low", "ci_high"]]

# %% [markdown]
# ## Plots
#
# Daily series are in `res.timeseries` (tidy: policy, replication, day, metric, value). The band is a
# 95% normal interval of the mean over replications (with 2 replications it is only indicative).

# %%
def daily_band(metric: str) -> pd.DataFrame:
    """Mean and 95% band over replications of one daily series, per policy and day."""
    ts = res.timeseries[res.timeseries["metric"] == metric]
    g = ts.groupby(["policy", "day"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    half = 1.96 * out["std"].fillna(0) / out["count"] ** 0.5
    return out.assign(low=out["mean"] - half, high=out["mean"] + half)


fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, metric, label in [(axes[0], "response_rate", "response rate of the day's InMails"),
                          (axes[1], "balance", "credits in recruiters' accounts")]:
    band_frame = daily_band(metric)
    for policy in sc.policy_names:
        d = band_frame[band_frame["policy"] == policy]
        ax.plot(d["day"], d["mean"], label=policy)
        ax.fill_between(d["day"], d["low"], d["high"], alpha=0.25)
    ax.set_xlabel(f"day since {sc.run.start_date}")
    ax.set_ylabel(label)
    ax.legend()
fig.tight_layout()

# %% [markdown]
# The paired differences of every metric, relative to the old policy, with their 95% intervals:

# %%
rel = res.comparison.dropna(subset=["rel_change"])
rel = rel[rel["metric"].isin([m for m in METRIC_NAMES if m in KEY])]
fig, ax = plt.subplots(figsize=(7, 0.4 * len(rel) + 1))
y = range(len(rel))
ax.errorbar(rel["rel_change"] * 100, y,
            xerr=[(rel["rel_change"] - rel["rel_ci_low"]) * 100, (rel["rel_ci_high"] - rel["rel_change"]) * 100],
            fmt="o", capsize=3)
ax.axvline(0, color="grey", lw=1)
ax.set_yticks(list(y), rel["metric"])
ax.set_xlabel("new vs old, % change (95% CI)")
ax.invert_yaxis()
fig.tight_layout()

# %% [markdown]
# ## Next
#
# * `res.write("runs/quickstart")` writes the same run folder as `inmail-sim run --out` (CSV files and
#   a manifest to reproduce the run).
# * `02_policy_design` changes one rule at a time; `03_market_assumptions` varies the market.
