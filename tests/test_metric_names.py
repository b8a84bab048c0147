"""Metric names that say what they count: ``unanswered`` (was ``pending``), ``credits_lost``, and
the one table of definitions in docs/metrics.md that every metric must have a row in."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scenario_helpers import tiny

from simulator import METRIC_NAMES, run_scenario
from simulator.core.metrics import CURRENT_METRICS, DEPRECATED_METRICS, canonical_metric, deprecation_note
from simulator.io.tables import METRIC_LABELS, METRIC_UNITS

ROOT = Path(__file__).resolve().parents[1]
METRICS_DOC = ROOT / "docs" / "metrics.md"
ROW = re.compile(r"^\|\s*`([a-z_]+)`\s*\|(.*)$", re.MULTILINE)


def _table_rows() -> dict[str, list[str]]:
    """metric -> its cells (definition, unit, side, notes) from the table of docs/metrics.md."""
    text = METRICS_DOC.read_text(encoding="utf-8")
    section = text.split("## The table", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): [c.strip() for c in m.group(2).strip().strip("|").split("|")]
            for m in ROW.finditer(section)}


# --------------------------------------------------------------------------- the alias


def test_pending_maps_to_unanswered_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"'pending' is deprecated.*use 'unanswered'"):
        assert canonical_metric("pending") == "unanswered"
    note = deprecation_note("pending")
    assert note is not None and "\n" not in note  # one line, as the CLI prints it


@pytest.mark.parametrize("name", [*CURRENT_METRICS, "by:seat_type:response_rate", "no_such_metric"])
def test_current_and_unknown_names_pass_unchanged_and_silently(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert canonical_metric(name) == name
    assert deprecation_note(name) is None


def test_every_deprecated_name_points_to_a_current_metric_and_is_still_recorded() -> None:
    for old, new in DEPRECATED_METRICS.items():
        assert new in CURRENT_METRICS and old in METRIC_NAMES, (old, new)
    assert set(CURRENT_METRICS) | set(DEPRECATED_METRICS) == set(METRIC_NAMES)
    assert {"unanswered", "credits_lost", "unanswered_per_active_member"} <= set(CURRENT_METRICS)


# --------------------------------------------------------------------------- one table of definitions


def test_every_metric_has_exactly_one_complete_row_in_docs_metrics() -> None:
    rows = _table_rows()
    text = METRICS_DOC.read_text(encoding="utf-8")
    section = text.split("## The table", 1)[1].split("\n## ", 1)[0]
    listed = [m.group(1) for m in ROW.finditer(section)]
    assert sorted(listed) == sorted(set(listed)), "a metric has two rows"
    assert set(rows) == set(METRIC_NAMES), (set(METRIC_NAMES) - set(rows), set(rows) - set(METRIC_NAMES))
    for name, cells in rows.items():
        assert len(cells) == 4 and all(cells), (name, cells)  # definition, unit, side, notes
    for old, new in DEPRECATED_METRICS.items():
        assert "deprecated" in rows[old][0] and f"`{new}`" in rows[old][0]
    assert "credits_expired" in rows["credits_lost"][0] and "credits_refunded" in rows["credits_lost"][0]


def test_every_metric_has_a_unit_and_a_label_for_the_tables() -> None:
    assert set(METRIC_UNITS) == set(METRIC_NAMES) and set(METRIC_LABELS) == set(METRIC_NAMES)


def test_the_definitions_live_in_one_place_linked_from_readme_and_docs_index() -> None:
    model = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    assert "(metrics.md)" in model
    assert "| `pending` |" not in model and "| `unanswered_per_active_member` |" not in model  # no second table
    assert "(docs/metrics.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(metrics.md)" in (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("### Metrics of one replication", 1)[1].split("\n## ", 1)[0]
    missing = [m for m in CURRENT_METRICS if m not in paragraph]
    assert not missing, f"README's metric list lacks {missing}"


# --------------------------------------------------------------------------- end to end


def test_a_run_records_unanswered_credits_lost_and_the_deprecated_column() -> None:
    """A two-policy scenario (3 replications each; the 2015 credits expire after 20 days so that some
    do within the 40-day run): per replication the identities hold, the old column equals the new
    one, and the summary carries both with identical statistics."""
    scenario = tiny(policies={"old": {"preset": "old_2014"},
                              "new": {"preset": "new_2015", "accrual": {"kind": "expire", "expire_days": 20}}})
    res = run_scenario(scenario, replications=3)
    reps = res.replications
    assert {"unanswered", "pending", "credits_lost"} <= set(reps.columns)
    np.testing.assert_array_equal(reps["unanswered"], reps["sent"] - reps["responses"])
    np.testing.assert_array_equal(reps["pending"], reps["unanswered"])
    np.testing.assert_array_equal(reps["credits_lost"],
                                  reps["credits_spent"] - reps["credits_refunded"] + reps["credits_expired"])
    new = reps[reps["policy"] == "new"]
    assert (new["credits_expired"] > 0).all() and (new["credits_lost"] > new["net_credit_burn"]).all()
    old = reps[reps["policy"] == "old"]
    np.testing.assert_array_equal(old["credits_lost"], old["net_credit_burn"])  # old_2014: credits never expire
    summary = res.summary.set_index(["policy", "metric"])
    for policy in ("old", "new"):
        a, b = summary.loc[(policy, "pending")], summary.loc[(policy, "unanswered")]
        assert a.to_dict() == b.to_dict()


def test_the_old_name_is_still_accepted_where_users_name_metrics() -> None:
    """``pending`` keeps working for one release in every layer that validates a metric name:
    explain's ``--metric``, a sensitivity output and the scenario schema's metric names (a sweep's
    ``metrics:``)."""
    from pydantic import TypeAdapter, ValidationError

    from simulator.experiments.explain import check_metrics
    from simulator.experiments.sensitivity import Output, parse_output
    from simulator.scenario import load_scenario
    from simulator.scenario.schema_fields import MetricName

    names = TypeAdapter(MetricName)
    assert [names.validate_python(m) for m in ("pending", "unanswered", "credits_lost")]
    with pytest.raises(ValidationError):
        names.validate_python("no_such_metric")

    scenario = load_scenario(tiny())
    check_metrics(["pending", "unanswered", "credits_lost"])  # raises on an unknown name
    for text in ("diff.pending", "new.unanswered", "credits_lost"):
        assert isinstance(parse_output(text, scenario, "new"), Output), text
    assert isinstance(parse_output("diff.no_such_metric", scenario, "new"), str)


def test_the_old_name_is_mapped_with_a_warning_where_users_name_it() -> None:
    from simulator.experiments.explain import check_metrics

    with pytest.warns(DeprecationWarning, match="'pending' is deprecated"):
        assert check_metrics(["pending", "sent"]) == ["unanswered", "sent"]


def test_the_command_line_prints_one_note_for_an_old_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main

    code = main(["explain", "scenarios/old_vs_new.yaml", "-n", "2", "-m", "pending", "--scale", "0.03",
                 "--set", "horizon_days=15", "--out", str(tmp_path / "x"), "--no-progress", "--no-figure"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err.count("inmail-sim: note: metric 'pending' is deprecated") == 1 and "use 'unanswered'" in err
    assert "unanswered:" in out and "Traceback" not in err


def test_a_run_folder_written_before_the_new_names_still_loads(tmp_path: Path) -> None:
    """Old folders have ``pending`` but no ``unanswered`` / ``credits_lost`` columns: both are derived."""
    import pandas as pd

    from simulator.io.outputs import load_results

    res = run_scenario(tiny(), replications=2)
    folder = res.write(tmp_path / "run")
    reps = pd.read_csv(folder / "replications.csv")
    reps.drop(columns=["unanswered", "credits_lost"]).to_csv(folder / "replications.csv", index=False)
    again = load_results(folder).replications
    np.testing.assert_array_equal(again["unanswered"], reps["pending"])
    np.testing.assert_allclose(again["credits_lost"], reps["net_credit_burn"] + reps["credits_expired"])


def test_the_printed_comparison_shows_the_current_names_only() -> None:
    res = run_scenario(tiny(), replications=2)
    table = res.table()
    assert METRIC_LABELS["unanswered"] in table and METRIC_LABELS["pending"] not in table
