"""report.html / report.md / PNG plots of `sim run`. (Every report kind opened in headless Chromium, and
every figure the terminal prints found in the reports: tests/test_report_numbers.py.)"""

import shutil

import pytest

from sim import report
from tests.conftest import MINIMAL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


PLOTS = ("cost_histogram.png", "cost_cdf.png", "finish_cdf.png", "spend_fan.png", "ettr_histogram.png",
         "interruptions_by_size.png")
FAILING = "reliability: {failure_rate_per_gpu_h: 0.005, job_failure_rate_per_h: 0.05}\n"  # a few per replication


def make_run(cli, write, tmp_path):
    text = MINIMAL.replace("tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}").replace(
        "  start: 2026-01-01", "  start: 2026-01-01\n  budget_usd: 400\n") + FAILING
    out = tmp_path / "run"
    code, _o, err = cli("run", write(text), "--reps", "50", "--workers", "1", "--out", out)
    assert code == 0, err
    return out


def test_run_writes_report_and_plots(cli, write, tmp_path):
    out = make_run(cli, write, tmp_path)
    page = (out / "report.html").read_text()
    for name in PLOTS:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert page.count('src="data:image/png;base64,') == 6  # embedded: no file or network needed
    assert "http://" not in page and "https://" not in page
    assert "P(cost &gt; budget $400.00)" in page and "Assumptions: the resolved scenario" in page
    md = (out / "report.md").read_text()
    assert "![cost histogram](cost_histogram.png)" in md and "| cost_usd |" in md


@pytest.mark.parametrize("values", [[0.95] * 5, [0.9, 0.9 + 1e-15], [], [1.0], [0.2, 0.99, float("nan")]])
def test_ettr_histogram_copes_with_any_data(values):
    import pandas as pd

    from sim.report import _png, plot_ettr_histogram

    ax = plot_ettr_histogram(pd.DataFrame({"ettr": pd.Series(values, dtype=float)}))
    assert _png(ax)[:4] == b"\x89PNG"


def test_run_report_has_a_reliability_section(cli, write, tmp_path):
    from tests.conftest import MINIMAL

    text = MINIMAL + "reliability: {failure_rate_per_gpu_h: 0.001, job_failure_rate_per_h: 0.01, detect: 10 min}\n"
    code, _o, err = cli("run", write(text), "--reps", "5", "--workers", "1", "--out", tmp_path / "r")
    assert code == 0, err
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Reliability" in md and "| ettr |" in md and "| job_failures |" in md
    assert (tmp_path / "r" / "ettr_histogram.png").read_bytes()[:4] == b"\x89PNG"


# --- interruptions per day held, by run size ------------------------------------------------------
def test_interruption_rates_of_a_hand_made_runs_table():
    import pandas as pd

    from sim.stats import interruption_rates, interruption_rates_by_size

    runs = pd.DataFrame({
        "workload": ["a", "a", "b", "b", "c", "a"],
        "gpu_hours": [192.0, 96.0, 64 * 48.0, 64 * 24.0, 10.0, 0.0],  # a: 8 GPUs, 1 day and half a day held
        "failures": [1, 0, 2, 0, 9, 1], "job_failures": [1, 1, 0, 0, 9, 0], "planned": [0, 0, 1, 0, 0, 0],
        "loss_spikes": [0, 0, 0, 1, 0, 0], "preemptions": [1, 0, 1, 0, 0, 0]})
    rates = interruption_rates(runs, {"a": 8, "b": 64})  # c: size unknown; the last a: held nothing
    assert rates["per_day"].tolist() == [3.0, 2.0, 2.0, 1.0]
    assert rates["accelerators"].tolist() == [8, 8, 64, 64]
    by = interruption_rates_by_size(rates)
    assert by["accelerators"].tolist() == [8, 64] and by["runs"].tolist() == [2, 2]
    assert by["mean"].tolist() == [2.5, 1.5] and by["interruptions"].tolist() == [4.0, 5.0]
    assert by["p5"].tolist() == pytest.approx([2.05, 1.05]) and by["p95"].tolist() == pytest.approx([2.95, 1.95])
    assert interruption_rates_by_size(interruption_rates(runs.iloc[:0], {"a": 8})).empty


def queued_runs(reps: int, seed: int = 3):
    """Runs of 8 and 64 GPUs on 64 GPUs (the big ones wait in the queue), continuous free
    checkpoints, no restart: interruptions per hour held are exactly the rates, 8 x 0.002 + 0.014
    and 64 x 0.002 + 0.014 an hour (hardware, job-level and planned)."""
    import sim
    from sim.loader import load_data

    loaded = load_data({"project": {"name": "q", "start": "2026-01-01"},
                        "pools": [{"name": "p", "accelerator": "h100", "count": 64, "price_usd_per_gpu_h": 2.0}],
                        "workloads": [{"name": "small", "runs": 6, "hours_per_run": 50, "accelerators": 8},
                                      {"name": "big", "runs": 2, "hours_per_run": 50, "accelerators": 64}],
                        "reliability": {"failure_rate_per_gpu_h": 0.002, "job_failure_rate_per_h": 0.01,
                                        "planned": {"rate_per_h": 0.004}, "checkpoint": {"interval": "auto"}}},
                       "queued")
    return sim.run(loaded, reps=reps, seed=seed, workers=1)


def test_per_size_rates_follow_the_runs_table_and_the_failure_rates():
    import numpy as np

    from sim.stats import interruption_rates, interruption_rates_by_size
    from tests.test_engine import sem

    result = queued_runs(40)
    runs = result.runs
    by = interruption_rates_by_size(interruption_rates(runs, {"small": 8, "big": 64})).set_index("accelerators")
    for name, n in (("small", 8), ("big", 64)):
        mine = runs[runs["workload"] == name]
        count = mine[["failures", "job_failures", "planned", "loss_spikes", "preemptions"]].sum(axis=1)
        per_day = (count / (mine["gpu_hours"] / n / 24)).to_numpy()
        assert by.loc[n, "runs"] == len(mine)
        assert by.loc[n, "mean"] == pytest.approx(per_day.mean(), rel=1e-12)
        assert by.loc[n, "p95"] == pytest.approx(np.percentile(per_day, 95), rel=1e-12)
        assert abs(per_day.mean() - 24 * (n * 0.002 + 0.014)) < 3 * sem(per_day)
        if name == "big":  # queued behind the small runs: the time from submission is far from the time held
            assert (mine["end_h"] - mine["submit_h"]).mean() > 1.5 * (mine["gpu_hours"] / n).mean()


def test_report_plots_interruptions_by_size_and_skips_it_without_runs_or_interruptions(tmp_path, cli, write):
    result = queued_runs(5)
    page = (result.report(tmp_path / "with") / "report.md").read_text()
    assert "![interruptions by size](interruptions_by_size.png)" in page
    assert "| accelerators per run | runs | interruptions per day held: mean | P5 | P95 |" in page
    assert (tmp_path / "with" / "interruptions_by_size.png").read_bytes()[:4] == b"\x89PNG"
    result._runs, result.out = None, None  # no per-run records at hand
    assert "interruptions_by_size" not in (result.report(tmp_path / "without") / "report.md").read_text()
    code, _o, err = cli("run", write(MINIMAL), "--reps", "3", "--workers", "1", "--out", tmp_path / "calm",
                        "--no-priors")
    assert code == 0, err  # no failures: nothing to plot
    assert (tmp_path / "calm" / "report.html").read_text().count("data:image/png") == 5
    assert not (tmp_path / "calm" / "interruptions_by_size.png").exists()


@pytest.mark.parametrize("sizes", [[], [8], [8, 1024, 16384]])
def test_interruptions_plot_copes_with_any_number_of_sizes(sizes):
    import pandas as pd

    from sim.report import _png, plot_interruptions_by_size

    by = pd.DataFrame({"accelerators": sizes, "runs": [1] * len(sizes), "interruptions": [1.0] * len(sizes),
                       "days_held": [1.0] * len(sizes), "mean": [float(s) / 8 for s in sizes],
                       "p5": [0.0] * len(sizes), "p95": [float(s) / 4 for s in sizes]})
    assert _png(plot_interruptions_by_size(by))[:4] == b"\x89PNG"


def test_text_columns_are_left_aligned_and_figures_right_aligned():
    html_text = report.table_html(["figure", "value", "what it is"],
                                  [["CPI", "1.02", "cost performance index"], ["VAC", "-$79.28k", "variance"]])
    assert '<th class="text">what it is</th>' in html_text and '<td class="text">variance</td>' in html_text
    assert "<td>1.02</td>" in html_text and "<td>-$79.28k</td>" in html_text and "<td>CPI</td>" in html_text


@pytest.mark.parametrize("kg, unit, top", [(57_300.0, "CO2 (t)", 57.3), (120.0, "CO2 (kg)", 120.0)])
def test_co2_comparison_is_drawn_in_the_unit_the_tables_use(kg, unit, top):
    import pandas as pd
    ax = report.plot_compare({"a": pd.DataFrame({"co2_kg": [kg] * 4})}, metric="co2_kg")
    assert ax.get_ylabel() == unit and ax.get_title().startswith("CO2 by strategy")
    assert ax.lines[0].get_ydata()[0] == pytest.approx(top)
