# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Plausible worlds: how sure is the old-vs-new answer?
#
# `inmail-sim run scenarios/old_vs_new.yaml` answers with a confidence interval such as "response
# rate +2.23 points, 95% CI [+2.20, +2.26]". That interval covers **Monte Carlo noise only**: every
# replication ran in the *same* market, whose behaviour is partly assumed. Notebook 04 showed that one
# of those assumptions, the personalization effect, moves the answer by as much as the answer itself.
#
# This notebook gives every answer with its real uncertainty:
#
# 1. the **uncertain assumptions** the scenario declares (its `uncertain:` block, each with a prior
#    range and the reason it is uncertain);
# 2. a **run across plausible worlds**: each world draws every assumption from its prior, and both
#    policies run in it on common random numbers (`inmail-sim run ... --worlds prior`);
# 3. the answer as **Monte Carlo interval vs range across worlds**, and a figure of the per-world
#    differences;
# 4. **robustness**: which policy meets the scenario's `decision:` requirements in most worlds, and
#    how far each falls short of the best policy of a world (regret);
# 5. **scenario discovery**: in which worlds does the conclusion flip (`inmail-sim discover`)?
#
# Every number comes from the public API (`from simulator import ...`).

# %% tags=["parameters"]
# Parameters. The defaults are the real sizes (about 75 s on 2 cores); CI runs this notebook
# with the small values in brackets (papermill-style: this cell is tagged "parameters").
SCENARIO = "../scenarios/old_vs_new.yaml"   # the main job, relative to this folder
WORLD_COUNT = 40         # plausible worlds drawn from the priors (Latin hypercube)        [CI: 12]
REPLICATIONS = 2         # replications per policy in each world (at least 2)             [CI: 2]
MEMBERS = 100_000        # simulated members (the scenario's own number)                  [CI: 2_000]
RECRUITER_SCALE = 1.0    # multiplies every recruiter group's count                       [CI: 0.06]
HORIZON_DAYS = 365       # days of sending                                                [CI: 60]
WORKERS = 2              # worker processes; results do not depend on it                  [CI: 1]
RESAMPLES = 50           # bootstrap resamples of the discovery's stability check         [CI: 10]

# %%
import tempfile

import pandas as pd
from IPython.display import display

from simulator import discover, load_scenario, plot_worlds, run_experiment, run_worlds, tradeoff_figure

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)
pd.set_option("display.max_colwidth", 90)

base = load_scenario(SCENARIO)
COUNTS = {g.name: max(1, round(g.count * RECRUITER_SCALE)) for g in base.market.recruiters if g.count > 0}
SIZE = {"market.members.count": MEMBERS, "horizon_days": HORIZON_DAYS}
SIZE |= {f"market.recruiters.{name}.count": n for name, n in COUNTS.items()}
scenario = load_scenario(SCENARIO, SIZE)
HEADLINE = ["response_rate", "responses", "net_credit_burn", "credits_per_response", "stockout_recruiter_days",
            "unanswered_per_active_member"]


def shown(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Rates as percent (their differences in points); everything else as stored."""
    out = frame.copy()
    rates = out["metric"].str.endswith("_rate")
    out.loc[rates, columns] = out.loc[rates, columns] * 100
    return out


# %% [markdown]
# ## 1 · The uncertain assumptions
#
# The `uncertain:` block of `old_vs_new.yaml` names the market values no published figure pins down.
# Each sets one or more market fields (`paths`, as in `--set`; a group of fields moves together by a
# common factor) and has a prior: the range it could plausibly take. `inmail-sim run` ignores the
# block and uses the values written in the market; studies across worlds draw from it.

# %%
pd.DataFrame([{"assumption": p.name, "prior": p.prior.kind, "a": p.prior.a, "b": p.prior.b,
               "range": f"{p.prior.low:.3g} - {p.prior.high:.3g}", "fields": len(p.paths), "why": p.reason}
              for p in scenario.uncertain])

# %% [markdown]
# ## 2 · The plain answer, and what its interval covers
#
# The ordinary run: both policies in the market as written, paired replications. Its 95% interval is
# narrow because it only measures how much the answer would move with other random seeds.

# %%
plain = run_experiment(scenario, replications=5 * REPLICATIONS, workers=WORKERS)
plain_rows = plain.comparison[plain.comparison["metric"].isin(HEADLINE)]
shown(plain_rows, ["diff", "ci_low", "ci_high"])[["metric", "diff", "ci_low", "ci_high"]].round(3)

# %% [markdown]
# ## 3 · Across plausible worlds
#
# `run_worlds` draws `WORLD_COUNT` worlds from the priors (a Latin hypercube, seeded from the
# scenario's root seed) and runs both policies `REPLICATIONS` times in each, on common random numbers
# within the world. `worlds_comparison` gives, per metric, the mean difference with its **95% Monte
# Carlo interval** (`mc_ci_*`: how precisely this run pins down the mean over worlds) next to the
# **range across worlds** (`worlds_q10`-`worlds_q90`: 80% of worlds; `worlds_q025`-`worlds_q975`:
# 95%), the share of worlds where the new rule is better (`p_better`) and the Monte Carlo share of
# one replication's variance (`mc_share`). The same table is `worlds_comparison.csv` of
# `inmail-sim run SCENARIO --worlds prior`.

# %%
res = run_worlds(scenario, worlds="prior", world_count=WORLD_COUNT, replications=REPLICATIONS, workers=WORKERS)
columns = ["diff_mean", "mc_ci_low", "mc_ci_high", "worlds_q10", "worlds_q90", "worlds_q025", "worlds_q975"]
table = res.worlds_comparison[res.worlds_comparison["metric"].isin(HEADLINE)]
shown(table, columns).set_index("metric")[[*columns, "p_better", "mc_share"]].round(3)

# %% [markdown]
# What `inmail-sim run --worlds` prints (rates in points):

# %%
print(res.table())

# %% [markdown]
# Each world's mean difference as a histogram; above it the 80% (thick) and 95% (thin) ranges across
# worlds and, in black, the mean with its Monte Carlo interval. When the black whiskers are much
# shorter than the bars, **the assumptions, not the number of replications, limit what we know**:
# more replications would shrink the black interval and leave the bars where they are.

# %%
plot_worlds(res)

# %% [markdown]
# ## 4 · Robustness: which policy holds up?
#
# The `decision:` block says what a policy must achieve. **Satisficing**: the share of worlds where a
# policy meets each requirement and all of them (with a 95% Wilson interval over the worlds).
# **Regret**: in each world, how far a policy falls short of the better policy of that world, in the
# metric's units, rates in points (0 = best in every world).

# %%
print("The decision requires:", "; ".join(r.text for r in scenario.decision))
rob = res.robustness
satisficing = rob[rob["measure"] == "satisficing"].pivot_table(index=["policy", "metric"], columns="statistic",
                                                              values="value", sort=False)
satisficing.round(3)

# %%
regret = shown(rob[rob["measure"] == "regret"], ["value"]).pivot_table(index=["metric", "policy"],
                                                                       columns="statistic", values="value", sort=False)
regret[["mean", "q90", "max"]].round(3)

# %% [markdown]
# ## 5 · Scenario discovery: in which worlds does the conclusion flip?
#
# `discover` reads a run folder with worlds and finds, with PRIM, the box of assumptions where a
# condition holds, e.g. where the new rule *lowers* the response rate, or total responses (each
# replication of a world counts as one case). It answers
# in one sentence, with the box's **coverage** (the share of the worlds where the condition holds
# that lie in the box) and **density** (the share of the box's worlds where it holds). On the command
# line: `inmail-sim discover RUN_DIR --where "diff.response_rate < 0"`; `inmail-sim report RUN_DIR`
# then shows it in the report's "How sure is this?" section.

# %%
folder = res.write(tempfile.mkdtemp(prefix="worlds-") + "/run", index=False)
found = {where: discover(folder, where, resamples=RESAMPLES)
         for where in ("diff.response_rate < 0", "diff.responses < 0")}
for where, result in found.items():
    print(f"{where}:\n  {result.sentence}\n")

# %%
flip = found["diff.responses < 0"]
display(flip.boxes[["dimension", "low", "high", "prior_low", "prior_high", "quasi_p", "coverage", "density"]]
        if len(flip.boxes) else "no box: the condition holds in no particular region (or in none / all worlds)")
if len(flip.trajectory):
    display(tradeoff_figure(flip))

# %% [markdown]
# **Reading (real sizes: 40 prior worlds x 2 replications; check them against your tables).**
#
# * The plain run says the new rule raises the response rate by **+2.24 points, 95% CI [+2.20,
#   +2.28]**. Across plausible worlds it is **+1.84 points on average, Monte Carlo CI [+1.59, +2.09],
#   and +0.99 to +2.96 in 80% of the worlds**: the plain CI is about 20 times narrower than what is
#   really known. The Monte Carlo share is 1%: the assumptions, not the replications, set the answer.
# * **Total responses**: the plain run says they fall (-4,575, CI [-5,886, -3,264]); across worlds they
#   fall on average (-4,233) but rise in 35% of the worlds (80% range -23.9k to +13.7k). Discovery:
#   new loses on responses when the personalization effect is below about 2 (coverage 96%, density
#   77%); where personalization is worth more, new gains responses too.
# * The net credit burn rises in every world (+516k to +797k in 80%); only 42% of the worlds keep it
#   under the decision's 900,000 for the new rule, and neither policy meets all three requirements in
#   most worlds (old 38%, new 42%).
#
# **How to read this.**
#
# * Quote the answer as its range across worlds, not as the Monte Carlo interval: "the new rule raises
#   the response rate by about X points; in 80% of plausible worlds by A to B". The Monte Carlo interval
#   only says how precisely this run has the average over worlds.
# * The ranges are as good as the priors: they are wide on purpose, covering every defensible value.
#   A world is not more plausible than another because the run drew it.
# * **With the CI sizes** (12 worlds, 2,000 members, about 60 recruiters, 60 days) this notebook only
#   checks that the code runs: 60 days is shorter than the 2015 rule's 90-day refund window, and 12
#   worlds cannot locate a region. Numbers from such a run must not be quoted.
#
# ## With the calibrated posterior instead of the priors
#
# The priors say what is *plausible*; the published figures (POLICY_FACTS 5, docs/calibration.md)
# rule some of it out. A Bayesian calibration weighs each world by how well it reproduces them and
# writes `posterior.csv` (one row per world: `world, weight`, one column per uncertain assumption):
#
# ```
# inmail-sim calibrate scenarios/calibrated_old_vs_new.yaml --out runs/calibration
# inmail-sim run scenarios/old_vs_new.yaml --worlds runs/calibration/posterior.csv --out runs/worlds
# inmail-sim discover runs/worlds --where "diff.response_rate < 0"
# inmail-sim report runs/worlds
# ```
#
# Here: `run_worlds(scenario, worlds="runs/calibration/posterior.csv")` (a path relative to where the
# notebook runs), or a `worlds:` key in the scenario file. The answer then reads "in 80% of the worlds
# the published figures leave plausible", and its range is usually much narrower than the prior's.
