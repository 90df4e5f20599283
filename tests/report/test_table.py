"""Golden tests of `table` on the fixed synthetic records of report_fixtures.GOLDEN."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.report.table import (
    aggregate,
    escape_latex,
    fmt_mean_std,
    fmt_number,
    make_table,
    write_table,
)

GOLDEN_DIR = Path(__file__).parent / "golden"


def _md_row(markdown: str, label: str, nth: int = 0) -> list[str]:
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {label} |")]
    return [c.strip() for c in rows[nth].strip("|").split("|")]


def test_plus_minus_formatting():
    assert fmt_mean_std(0.714, 0.0549) == "0.71 ± 0.05"
    assert fmt_mean_std(0.714, float("nan")) == "0.71"  # one seed: no spread to show
    assert fmt_mean_std(-0.333, 0.1, latex=True) == r"$-$0.33\,$\pm$\,0.10"
    assert fmt_number(-0.001) == "0.00"
    assert escape_latex("a_b 50% C/κ ≤ 1") == r"a\_b 50\% C/$\kappa$ $\le$ 1"


def test_markdown_matches_the_golden_file(golden_results):
    markdown = make_table(golden_results, "golden", reps=500).markdown
    path = GOLDEN_DIR / "table.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(markdown)
    assert markdown == path.read_text()


def test_best_safe_reward_is_bold_and_unsafe_cells_grey(golden_results):
    report = make_table(golden_results, "golden", reps=200)
    md, tex = report.markdown, report.latex
    # CarGoal1: BC-Safe safe but lower, CPQ unsafe (higher reward does not win), DRCORL best safe
    assert _md_row(md, "CarGoal1")[1:] == [
        "0.42 ± 0.02", "0.60 ± 0.10",
        "_0.90 ± 0.10_", "_2.00 ± 0.50_",
        "**0.75 ± 0.05**", "**0.30 ± 0.10**",
    ]  # fmt: skip
    assert r"\color{gray} 0.90\,$\pm$\,0.10" in tex
    assert r"\textbf{0.75\,$\pm$\,0.05}" in tex
    assert r"\textbf{0.42" not in tex and r"\color{gray} 0.42" not in tex
    # HalfCheetahVelocity: BC-Safe unsafe; CPQ and DRCORL tie at the printed 0.65: both bold
    cheetah = _md_row(md, "HalfCheetahVelocity")
    assert (
        cheetah[1].startswith("_") and cheetah[3].startswith("**") and cheetah[5].startswith("**")
    )
    # ToyVelocity: everything unsafe, so nothing is bold; CPQ has no records there
    toy = _md_row(md, "ToyVelocity")
    assert not any("**" in c for c in toy) and toy[3:5] == ["–", "–"]


def test_published_rows_follow_the_same_rules_and_mark_doubtful_values(golden_results):
    md = make_table(golden_results, "golden", reps=200).markdown
    first = ["0.38", "0.46", "_0.68_", "_3.73_", "**0.91**", "**0.00**"]
    assert _md_row(md, "↳ published", 0)[1:] == first
    # HalfCheetahVelocity published: DRCORL's cost 0.00 is doubtful (notebook says 0.3)
    cheetah = _md_row(md, "↳ published", 1)
    assert cheetah[1:3] == ["**0.94**", "**0.71**"] and cheetah[5:] == ["0.86", "0.00†"]
    assert md.count("↳ published") == 2  # ToyVelocity is not in the published table
    plain = make_table(golden_results, "golden", with_published=False, reps=200)
    assert "published" not in plain.markdown and "published" not in plain.latex


def test_caption_states_protocol_normalisation_data_seeds_episodes(golden_results):
    md = make_table(golden_results, "golden", reps=200).markdown
    caption = md.splitlines()[0]
    for fact in ("3 seeds", "20 evaluation episodes", "honest (offline", "C/kappa", "toy", "κ"):
        assert fact in caption
    assert "records at cost limits 20, 30 are not in the table" in md


def test_missing_seed_is_shown_in_the_cell_and_explained(tmp_path, write_golden):
    write_golden(tmp_path, skip={("CarGoal1", "drcorl", 10.0, 2)})
    md = make_table(tmp_path, "golden", reps=200).markdown
    assert _md_row(md, "CarGoal1")[5] == "**0.72 ± 0.04 (n=2)**"
    assert "have only k of 3 seeds" in md


def test_aggregates_golden_values(golden_results):
    report = make_table(golden_results, "golden", reps=500)
    agg = report.aggregates.set_index("algorithm")
    bc = agg.loc["bc_safe"]
    # BC-Safe rewards pooled over 3 tasks x 3 seeds; IQM = mean of the middle five values
    assert bc["reward"].point == pytest.approx((0.44 + 0.50 + 0.50 + 0.50 + 0.90) / 5)
    assert bc["cost"].point == pytest.approx(1.58)
    # DRCORL beats BC-Safe on CarGoal1 only -> P = 1/3, every resample agrees
    assert (bc["poi_reward"].point, bc["poi_reward"].low, bc["poi_reward"].high) == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3)
    )
    cpq = agg.loc["cpq"]
    # CarGoal1: DRCORL wins 0 of 9 pairs, ties 1 -> 1/18; HalfCheetahVelocity: 4.5 of 9 -> 1/2
    assert cpq["tasks"] == 2 and cpq["poi_reward"].point == pytest.approx((1 / 18 + 1 / 2) / 2)
    assert (cpq["poi_reward"].low, cpq["poi_reward"].high) == pytest.approx((1 / 36, 19 / 36))
    assert agg.loc["drcorl", "poi_reward"] is None
    assert "| CPQ | 2 | 0.76 [" in report.markdown


def test_aggregates_are_reproducible(golden_results):
    cells = make_table(golden_results, "golden", reps=200).cells
    assert aggregate(cells, reps=200).equals(aggregate(cells, reps=200))


@pytest.mark.skipif(
    shutil.which("pdflatex") is None,
    reason="pdflatex not on PATH (run `make test-deps`: texlive-latex-base/recommended)",
)
def test_generated_latex_compiles_with_pdflatex(
    tmp_path, make_record, write_record, write_golden, protocol
):
    results = write_golden(tmp_path / "results", profile="my_profile")
    write_golden(results, profile="my_profile", skip={("CarGoal1", "drcorl", 10.0, 2)})
    # every marker: other protocol, other dataset, a short cell, doubtful published values
    online = {**protocol, "name": "paper", "online": True}
    for seed in range(3):
        write_record(
            results,
            make_record("caps", "CarGoal1", 10.0, seed, 0.5, 0.5, "my_profile", protocol=online),
        )
        write_record(
            results,
            make_record("ccac", "CarGoal1", 10.0, seed, -0.5, 0.1, "my_profile", source="dsrl"),
        )
    paths = write_table(make_table(results, "my_profile", reps=100), tmp_path / "out")
    tex = paths[0]
    doc = tmp_path / "out" / "doc.tex"
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{xcolor}\n"
        "\\usepackage{graphicx}\n\\begin{document}\n\\input{" + tex.name + "}\n\\end{document}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=doc.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (doc.parent / "doc.pdf").stat().st_size > 1000


def test_cli_writes_tex_md_csv_and_prints(golden_results, reports, capsys):
    assert main(["table", "--profile", "golden", "--results", str(golden_results)]) == 0
    out = capsys.readouterr().out
    assert "| CarGoal1 |" in out and "wrote" in out
    for name in ("table.tex", "table.md", "table.csv"):
        assert (reports / "golden" / name).is_file()


def test_cli_without_records_says_what_to_run(tmp_path, reports, capsys):
    assert main(["table", "--profile", "demo", "--results", str(tmp_path)]) == 2
    assert f"sweep --profile demo --results {tmp_path} --wait" in capsys.readouterr().err


def test_report_never_imports_torch_or_the_runner():
    code = (
        "import sys, benchmark.report.table, benchmark.report.diff, benchmark.report.figures\n"
        "bad = [m for m in ('torch', 'benchmark.runner', 'algorithms', 'baselines', 'osrl')"
        " if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_profile_table_limits_and_seeds_shape_the_table(golden_results, monkeypatch):
    from benchmark.report import records

    settings = records.ProfileReportSettings(
        seeds=(0, 1, 2, 3), table_cost_limits={"HalfCheetahVelocity": [10, 20], "default": "drcorl"}
    )
    monkeypatch.setattr(records, "profile_settings", lambda profile: settings)
    md = make_table(golden_results, "golden", reps=100).markdown
    labels = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    assert labels[3:6] == [
        "HalfCheetahVelocity (κ=10)",
        "↳ published",
        "HalfCheetahVelocity (κ=20)",
    ]
    # the profile asks for 4 seeds: every cell is short, and says so
    assert _md_row(md, "CarGoal1")[5] == "**0.75 ± 0.05 (n=3)**"
    assert "have only k of 4 seeds" in md


def test_paper_profile_runs_carrun_baselines_at_10_and_30_and_drcorl_at_30():
    from benchmark.profiles import load_profile
    from benchmark.tasks import get_task

    paper = load_profile("paper")
    carrun, cheetah = get_task("CarRun"), get_task("HalfCheetahVelocity")
    for baseline in ("bc_safe", "cdt", "caps", "ccac"):
        assert paper.limits_for(carrun, baseline) == (10.0, 30.0)
        assert paper.limits_for(cheetah, baseline) == (10.0,)
    assert paper.limits_for(carrun, "drcorl") == (30.0,)
    assert paper.table_limits_for(carrun) == (10.0, 30.0)


def test_carrun_row_shows_both_limits_with_the_doubtful_published_baselines(
    tmp_path, make_record, write_record
):
    results = tmp_path / "results"
    for seed in range(3):
        for limit in (10.0, 30.0):
            write_record(results, make_record("bc_safe", "CarRun", limit, seed, 0.9, 0.5, "paper"))
        write_record(results, make_record("drcorl", "CarRun", 30.0, seed, 0.95, 0.2, "paper"))
    md = make_table(results, "paper", reps=200).markdown
    low, high = _md_row(md, "CarRun (κ=10)"), _md_row(md, "CarRun (κ=30)")
    assert low[3:5] == ["–", "–"] and high[3:5] == ["**0.95 ± 0.00**", "**0.20 ± 0.00**"]
    lines = md.splitlines()
    for label in ("CarRun (κ=10)", "CarRun (κ=30)"):
        below = lines[
            next(i for i, line in enumerate(lines) if line.startswith(f"| {label} |")) + 1
        ]
        published = [c.strip() for c in below.strip("|").split("|")]
        # the baselines' published threshold is unknown: the row sits under both, marked †
        assert published[0] == "↳ published"
        assert [c.strip("*") for c in published[1:3]] == ["0.97†", "0.10†"]
    # DRCORL's published CarRun value is at its own 30 only
    assert _md_row(md, "↳ published", 0)[3:5] == ["–", "–"]
    assert _md_row(md, "↳ published", 1)[3:5] == ["**0.99**", "**0.30†**"]
    assert "results/published/PROVENANCE.md" in md


def _fake_dsrl_dataset(task_name: str):
    """A tiny dataset with a task's shapes: planning only needs its sha256."""
    import numpy as np

    from benchmark.data.dataset import from_arrays
    from benchmark.tasks import get_task

    task = get_task(task_name)
    n = 4
    arrays = {
        "observations": np.zeros((n, task.obs_dim)),
        "next_observations": np.zeros((n, task.obs_dim)),
        "actions": np.zeros((n, task.act_dim)),
        "rewards": np.zeros(n),
        "costs": np.zeros(n),
        "terminals": np.zeros(n, dtype=bool),
        "timeouts": np.array([False, True, False, True]),
    }
    return from_arrays(task_name, arrays, source="dsrl")


def test_paper_osrl_plan_runs_every_method_at_three_limits_per_task(capsys):
    """`sweep --dry-run --profile paper-osrl`: the plan (with stand-in datasets, as the DSRL
    files are not in CI) has every method at its task family's three OSRL thresholds."""
    from benchmark.profiles import load_profile
    from benchmark.sweep import _describe, expand

    profile = load_profile("paper-osrl")
    cache = {(t, profile.data, None): _fake_dsrl_dataset(t) for t in profile.tasks}
    plans = expand(profile, {}, cache)
    limits: dict[tuple, set] = {}
    for plan in plans:
        key = (plan.entry.name, plan.task.name, plan.spec.seed)
        limits.setdefault(key, set()).update(plan.eval_cost_limits)
    assert {k[0] for k in limits} == set(profile.algorithms) and len(profile.algorithms) == 9
    for (algorithm, task, _), found in limits.items():
        family = {20.0, 40.0, 80.0} if task != "CarRun" else {10.0, 20.0, 40.0}
        assert found == family, (algorithm, task)
    _describe(plans, plans)
    out = capsys.readouterr().out
    assert "CAPS PointGoal1 kappa=20/40/80 seed=0" in out or "caps PointGoal1" in out
    assert "kappa=10/20/40" in out and "kappa=20/40/80" in out


def test_paper_osrl_table_averages_over_the_three_limits_and_says_so(
    tmp_path, make_record, write_record
):
    results = tmp_path / "results"
    rewards = {20.0: [0.2, 0.3, 0.4], 40.0: [0.5, 0.6, 0.7], 80.0: [0.8, 0.9, 1.0]}
    for limit, values in rewards.items():
        for seed, reward in enumerate(values):
            record = make_record(
                "bc_safe", "CarGoal1", limit, seed, reward, limit / 40, "paper-osrl"
            )
            write_record(results, record)
    # CPQ lacks the 80 run: it cannot be averaged like the others, so it is left out, said so
    for limit in (20.0, 40.0):
        for seed in range(3):
            write_record(
                results, make_record("cpq", "CarGoal1", limit, seed, 0.5, 0.5, "paper-osrl")
            )
    report = make_table(results, "paper-osrl", reps=200)
    (cell,) = report.cells
    # per seed: mean over 20/40/80 -> 0.5, 0.6, 0.7; cost (0.5 + 1 + 2) / 3 for every seed
    assert np.allclose(cell.reward, [0.5, 0.6, 0.7]) and np.allclose(cell.cost, 3.5 / 3)
    assert _md_row(report.markdown, "CarGoal1")[1:3] == ["_0.60 ± 0.10_", "_1.17 ± 0.00_"]
    caption = report.markdown.splitlines()[0]
    assert "Averaging: each cell is, per seed, the mean over the task's cost limits" in caption
    assert "20, 40, 80" in caption
    assert "CPQ on CarGoal1: records at cost limit(s) 20, 40 only" in report.markdown
    assert report.cells_frame["cost_limits_averaged"].tolist() == ["20;40;80"]
    assert "↳ published" not in report.markdown  # the poster's single-limit cells do not match


def test_a_single_limit_table_says_it_does_not_average(golden_results):
    caption = make_table(golden_results, "golden", reps=200).markdown.splitlines()[0]
    assert "Averaging: none over cost limits" in caption


def test_data_failing_the_dataset_criteria_is_named_under_the_table(tmp_path, write_golden):
    import json

    write_golden(tmp_path)
    md = make_table(tmp_path, "golden", reps=200).markdown
    assert "docs/datasets.md" not in md  # every golden record says its data meets them
    for path in (tmp_path / "runs" / "golden").glob("*.json"):
        record = json.loads(path.read_text())
        if record["task"] == "CarGoal1":
            record["dataset"]["failed_criteria"] = ["best_safe_return", "safe_fraction"]
        elif record["task"] == "ToyVelocity":
            del record["dataset"]["failed_criteria"]  # a record from before the check
        path.write_text(json.dumps(record))
    md = make_table(tmp_path, "golden", reps=200).markdown
    assert "fails the docs/datasets.md criteria" in md
    assert "CarGoal1 (best_safe_return, safe_fraction)" in md
    assert "Not checked against those criteria (records older than the check): ToyVelocity." in md


def test_a_table_of_another_results_folder_never_writes_the_checkouts_reports(
    golden_results, monkeypatch, tmp_path
):
    from benchmark.paths import REPO_ROOT

    monkeypatch.delenv("BENCHMARK_REPORTS_DIR", raising=False)
    assert main(["table", "--profile", "golden", "--results", str(golden_results)]) == 0
    assert (golden_results / "reports" / "golden" / "table.md").exists()
    assert not (REPO_ROOT / "reports" / "golden").exists()
    out = tmp_path / "elsewhere"
    assert (
        main(["table", "--profile", "golden", "--results", str(golden_results), "--out", str(out)])
        == 0
    )
    assert (out / "table.md").exists()


def test_a_profile_given_as_a_path_reports_its_runs(golden_results, reports, tmp_path):
    profile = tmp_path / "golden.yaml"
    profile.write_text(
        "name: golden\ntasks: [ToyVelocity]\nalgorithms: [bc_safe]\nbudgets: smoke\n"
    )
    for verb in ("table", "diff"):
        assert main([verb, "--profile", str(profile), "--results", str(golden_results)]) == 0
        assert (reports / "golden" / f"{verb}.md").exists()


def test_a_table_of_some_of_a_profiles_runs_names_the_missing_cells(golden_results, monkeypatch):
    from benchmark.report import records

    settings = records.ProfileReportSettings(
        seeds=(0, 1, 2), tasks=("ToyVelocity",), algorithms=("bc_safe", "drcorl", "ccac")
    )
    monkeypatch.setattr(records, "profile_settings", lambda profile: settings)
    md = make_table(golden_results, "golden", reps=100).markdown
    assert "Not in this table (no record yet): 1 of the profile's 3" in md
    assert "CCAC on ToyVelocity" in md


def test_the_budget_scale_is_printed_and_never_mixed_in_a_cell(tmp_path, make_record, write_record):
    from benchmark.errors import ReportError
    from benchmark.report.diff import make_diff

    results = tmp_path / "results"
    for seed in range(3):
        record = make_record("bc_safe", "ToyVelocity", 10.0, seed, 0.5, 0.5, config={"steps": 4})
        record["budget_scale"] = 4.0
        write_record(results, record)
    assert "Budget scale: step counts × 4" in make_table(results, "golden", reps=50).markdown
    assert "Budget scale: step counts × 4" in make_diff(results, "golden").markdown
    write_record(results, make_record("bc_safe", "ToyVelocity", 10.0, 0, 0.5, 0.5))
    with pytest.raises(ReportError, match="budget scales x1, x4"):
        make_table(results, "golden", reps=50)
