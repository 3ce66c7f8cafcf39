"""sim backtest: the scoring arithmetic on cases whose answer is known in closed form, bad case
files (exit 2 naming the file and the key), the files the CLI writes, and the table in
docs/validation.md kept current."""

import json
import math
import re
import shutil
import textwrap

import pytest
from scipy import stats

import sim
from sim import backtesting
from tests.test_engine import plan_of

# 2 runs of 1B params on 20B tokens, 8 H100 each at MFU 0.4, $2/GPU-h, no priors: deterministic.
GPU_H_PER_RUN = 6 * 1e9 * 20e9 / (989e12 * 0.4 * 3600)  # 84.26 GPU-hours
CASE = """\
case: {{name: {name}, kind: arithmetic, description: "closed form"}}
expected:
{expected}
project: {{name: {name}, start: 2026-01-01}}
pools:
  - {{name: gpus, accelerator: h100, count: 16, price_usd_per_gpu_h: 2.0}}
workloads:
  - {{name: train, runs: 2, params: 1B, tokens: 20B, accelerators: 8, mfu: 0.4}}
simulation: {{priors: "off"}}
"""


def figure(metric, value, **extra) -> str:
    fields = {"metric": metric, "value": value, "source": "closed form", "date": "2026-01-01", "checked": True,
              **extra}
    return "  - " + json.dumps(fields)


@pytest.fixture
def folder(tmp_path):
    def _make(files: dict[str, str]):
        d = tmp_path / "cases"
        d.mkdir(exist_ok=True)
        for name, text in files.items():
            (d / name).write_text(textwrap.dedent(text))
        return d

    return _make


def closed_form_case(name="tiny", expected=None) -> str:
    expected = expected or [figure("gpu_hours", 2 * GPU_H_PER_RUN), figure("gpu_hours", GPU_H_PER_RUN)]
    return CASE.format(name=name, expected="\n".join(expected))


def test_exact_figure_inside_with_zero_error_and_a_wrong_one_outside(folder):
    d = folder({"tiny.yaml": closed_form_case()})
    result = sim.backtest(d, reps=5, seed=3)
    exact, half = result.rows
    assert exact["p5"] == exact["p50"] == exact["p95"] == pytest.approx(2 * GPU_H_PER_RUN, rel=1e-9)
    assert exact["inside"] and exact["p50_error"] == pytest.approx(0.0, abs=1e-9)
    assert exact["p95_p5"] == pytest.approx(1.0)
    assert not half["inside"] and half["p50_error"] == pytest.approx(1.0, rel=1e-9)  # twice the published value
    s = result.summary["overall"]
    assert (s["figures"], s["inside"], s["coverage"]) == (2, 1, 0.5)
    assert s["median_abs_p50_error"] == pytest.approx(0.5, rel=1e-9)
    assert result.summary["large_pretrain"]["figures"] == 0
    assert result.out is None


def test_workload_per_run_sums_and_tolerance(folder):
    expected = [figure("gpu_hours_per_run", GPU_H_PER_RUN, workload="train"),
                figure("cost_usd", 2 * GPU_H_PER_RUN * 2.0 * 1.01, tolerance=0.02 * 2 * GPU_H_PER_RUN * 2.0),
                figure("failures + job_failures", 1, tolerance=1),
                figure("gpu_hours_wl", 2 * GPU_H_PER_RUN * 0.9, workload="train")]
    d = folder({"tiny.yaml": closed_form_case(expected=expected)})
    rows = sim.backtest(d, reps=3).rows
    assert [r["inside"] for r in rows] == [True, True, True, False]
    assert rows[0]["p50"] == pytest.approx(GPU_H_PER_RUN, rel=1e-9)
    assert rows[1]["p50_error"] == pytest.approx(1 / 1.01 - 1, rel=1e-9)
    assert rows[2]["p50"] == 0.0  # no failures without priors
    assert rows[3]["p50_error"] == pytest.approx(1 / 0.9 - 1, rel=1e-9)


def test_precision_matches_the_interval_a_rounded_figure_stands_for(folder):
    exact = 2 * GPU_H_PER_RUN  # 168.52... GPU-hours
    expected = [figure("gpu_hours", 170, precision=2),  # 170 stands for [165, 175): meets the point
                figure("gpu_hours", 170, precision=3),  # [169.5, 170.5): does not
                figure("gpu_hours", 200, precision=1)]  # [150, 250): trailing zeros not significant
    rows = sim.backtest(folder({"tiny.yaml": closed_form_case(expected=expected)}), reps=2).rows
    assert [r["inside"] for r in rows] == [True, False, True]
    assert [r["tolerance"] for r in rows] == [5.0, 0.5, 50.0]
    assert rows[0]["p50"] == pytest.approx(exact, rel=1e-9)
    assert backtesting.rounding_tolerance(2500, 2) == pytest.approx(50) and backtesting.rounding_tolerance(
        0.012, 2) == pytest.approx(0.0005)


BAD = [
    ("no case block", lambda t: t.replace('case: {name: tiny, kind: arithmetic, description: "closed form"}\n', ""),
     "case"),
    ("bad kind", lambda t: t.replace("kind: arithmetic", "kind: guess"), "case.kind"),
    ("unknown metric", lambda t: t.replace('"metric": "gpu_hours"', '"metric": "gpu_days"', 1), "expected[0].metric"),
    ("unknown workload", lambda t: t.replace('"metric": "gpu_hours"', '"workload": "nope", "metric": "gpu_hours"', 1),
     "expected[0].workload"),
    ("bad value", lambda t: re.sub(r'"value": [0-9.e+]+', '"value": "lots"', t, count=1), "expected[0].value"),
    ("unknown figure key", lambda t: t.replace('"checked": true', '"checkd": true', 1), "expected[0].checkd"),
    ("no source", lambda t: t.replace('"source": "closed form", ', "", 1), "expected[0].source"),
    ("precision and tolerance", lambda t: t.replace('"checked": true', '"checked": true, "precision": 2, '
                                                    '"tolerance": 1', 1), "expected[0].precision"),
    ("bad precision", lambda t: t.replace('"checked": true', '"checked": true, "precision": 2.5', 1),
     "expected[0].precision"),
    ("bad scenario key", lambda t: t.replace("count: 16", "count: many"), "pools[0].count"),
    ("bad statistic", lambda t: t.replace('"checked": true', '"checked": true, "statistic": "median"', 1),
     "expected[0].statistic"),
    ("case reps below 2", lambda t: t.replace("kind: arithmetic", "kind: arithmetic, reps: 1"), "case.reps"),
    ("case reps not whole", lambda t: t.replace("kind: arithmetic", "kind: arithmetic, reps: 2.5"), "case.reps"),
]


@pytest.mark.parametrize("why, edit, key", BAD, ids=[b[0] for b in BAD])
def test_bad_case_files_exit_2_naming_file_and_key(cli, folder, tmp_path, why, edit, key):
    d = folder({"good.yaml": closed_form_case("good"), "bad.yaml": edit(closed_form_case())})
    code, out, err = cli("backtest", d, "--reps", "2", "--out", tmp_path / "out")
    assert code == 2, (why, out, err)
    assert "bad.yaml" in err and key in err, err
    assert "Traceback" not in err


def test_empty_or_missing_folder_and_duplicate_names(cli, folder, tmp_path):
    code, _, err = cli("backtest", tmp_path / "nowhere", "--out", tmp_path / "o1")
    assert code == 2 and "no such folder" in err
    d = folder({"a.yaml": closed_form_case("same"), "b.yaml": closed_form_case("same")})
    code, _, err = cli("backtest", d, "--out", tmp_path / "o2")
    assert code == 2 and "b.yaml" in err and "case.name" in err


def test_cli_writes_json_and_markdown(cli, folder, tmp_path):
    d = folder({"tiny.yaml": closed_form_case()})
    out = tmp_path / "out"
    code, text, err = cli("backtest", d, "--reps", "4", "--seed", "1", "--out", out)
    assert code == 0, err
    assert {"backtest.json", "backtest.md"} <= {p.name for p in out.iterdir()}
    data = json.loads((out / "backtest.json").read_text())
    assert data["reps"] == 4 and data["seed"] == 1 and len(data["rows"]) == 2
    assert data["summary"]["overall"]["coverage"] == 0.5
    assert "| tiny | gpu_hours |" in (out / "backtest.md").read_text()
    assert "tiny" in text and "coverage 1/2 = 50%" in text
    code, text, err = cli("backtest", d, "--reps", "4", "--out", tmp_path / "out2", "--json")
    assert code == 0 and json.loads(text)["rows"][0]["inside"] is True


def test_write_docs_only_for_the_shipped_cases_at_the_defaults(cli, folder, tmp_path):
    d = folder({"tiny.yaml": closed_form_case()})
    code, _, err = cli("backtest", d, "--write-docs", "--out", tmp_path / "o")
    assert code == 2 and "--write-docs" in err
    code, _, err = cli("backtest", "--reps", "10", "--write-docs", "--out", tmp_path / "o")
    assert code == 2 and "--write-docs" in err


def test_docs_text_replaces_only_the_marked_block():
    text = f"before\n{backtesting.BEGIN}\nold\n{backtesting.END}\nafter\n"
    new = backtesting.docs_text(text, "new table\n")
    assert new == f"before\n{backtesting.BEGIN}\nnew table\n{backtesting.END}\nafter\n"
    assert backtesting.docs_block(new) == "new table\n"
    with pytest.raises(ValueError):
        backtesting.docs_text("no markers", "x")


def test_every_shipped_case_reads():
    cases = backtesting.read_cases(backtesting.FOLDER)
    assert len(cases) >= 12
    assert {c.kind for c in cases} >= {"pretrain", "reliability", "arithmetic"}
    for c in cases:
        assert all(e["source"] and "checked" in e for e in c.expected), c.file


@pytest.mark.slow
def test_docs_table_is_current():
    """The table in docs/validation.md is what the shipped cases give now (same seed and reps);
    refresh it with  sim backtest --write-docs."""
    result = backtesting.run()
    current = backtesting.docs_block(backtesting.DOCS.read_text())
    assert current == backtesting.markdown(result), "docs/validation.md is stale: run  sim backtest --write-docs"


# --- per-case replications and mean figures ----------------------------------------------------------
def test_case_reps_caps_that_cases_replications_and_is_shown(cli, folder, tmp_path):
    """`case.reps: 3` runs that case 3 times whatever --reps above it (and --reps when it is lower);
    the count is in each row of backtest.json, in its cases and in the table's reps column."""
    few = closed_form_case("few").replace("kind: arithmetic", "kind: arithmetic, reps: 3")
    d = folder({"few.yaml": few, "all.yaml": closed_form_case("all")})
    for reps, want in (("5", {"few": 3, "all": 5}), ("2", {"few": 2, "all": 2})):
        out = tmp_path / f"out{reps}"
        code, text, err = cli("backtest", d, "--reps", reps, "--out", out)
        assert code == 0, err
        data = json.loads((out / "backtest.json").read_text())
        assert {r["case"]: r["reps"] for r in data["rows"]} == want
        assert {c["name"]: c["reps"] for c in data["cases"]} == want
        md = (out / "backtest.md").read_text()
        assert re.search(rf"\| few \| gpu_hours \|.*\| {want['few']} \|$", md, re.M), md
        assert re.search(rf"^few .* {want['few']}$", text, re.M), text


# 8 H100 for 100 h at 0.01 failures per GPU-hour: a Poisson count of mean 8 per replication
RANDOM = """\
case: {{name: {name}, kind: reliability, description: "poisson count"}}
expected:
  - {{metric: failures, statistic: mean, value: {value}, tolerance: {tol}, source: "closed form", checked: true}}
project: {{name: {name}, start: 2026-01-01}}
pools:
  - {{name: gpus, accelerator: h100, count: 8, price_usd_per_gpu_h: 2.0}}
workloads:
  - {{name: job, hours_per_run: 100 h, accelerators: 8}}
reliability: {{failure_rate_per_gpu_h: 0.01, restart: 0, checkpoint: {{interval: auto, write: 0}}}}
simulation: {{priors: "off"}}
"""


def test_mean_figure_inside_when_mean_and_3_standard_errors_meet_its_interval(cli, folder, tmp_path):
    d = folder({"r.yaml": RANDOM.format(name="r", value=8, tol=0)})
    code, _, err = cli("backtest", d, "--reps", "30", "--seed", "4", "--out", tmp_path / "o")
    assert code == 0, err
    row = json.loads((tmp_path / "o" / "backtest.json").read_text())["rows"][0]
    x = backtesting.metric_values(backtesting.replications(backtesting.read_case(d / "r.yaml").loaded, 30, 4)[0],
                                  "failures")
    assert row["mean"] == pytest.approx(x.mean()) and row["reps"] == 30
    assert row["mean_half_width"] == pytest.approx(3 * x.std(ddof=1) / math.sqrt(30))
    assert abs(row["mean"] - 8) < 4 * x.std(ddof=1) / math.sqrt(30)  # Poisson mean 8
    assert 0 < row["mean_half_width"] < 3.0
    m, half, tol = row["mean"], row["mean_half_width"], 0.5
    cases = {"near.yaml": RANDOM.format(name="near", value=m + half + tol - 0.01, tol=tol),
             "far.yaml": RANDOM.format(name="far", value=m + half + tol + 0.01, tol=tol),
             "low.yaml": RANDOM.format(name="low", value=m - half - 0.01, tol=0)}
    d2 = folder(cases)
    code, text, err = cli("backtest", d2, "--reps", "30", "--seed", "4", "--out", tmp_path / "o2")
    assert code == 0, err
    rows = {r["case"]: r for r in json.loads((tmp_path / "o2" / "backtest.json").read_text())["rows"]}
    assert (rows["near"]["inside"], rows["far"]["inside"], rows["low"]["inside"]) == (True, False, False)
    assert rows["far"]["p50_error"] == pytest.approx(m / (m + half + tol + 0.01) - 1)  # the mean's error
    assert "(mean)" in text and "3 standard errors, 30 replications" in text


def test_a_mean_figure_needs_two_replications(cli, folder, tmp_path):
    d = folder({"r.yaml": RANDOM.format(name="r", value=8, tol=0)})
    code, _, err = cli("backtest", d, "--reps", "1", "--out", tmp_path / "o")
    assert code == 2 and "r.yaml" in err and "--reps" in err and "Traceback" not in err
    assert "case.reps" not in err  # the command line asked for too few, not the case


SHIPPED_NEW = ("airesim_default.yaml", "kokolis_1024.yaml", "kokolis_16384.yaml", "kokolis_131072.yaml")


def test_airesim_case_carries_airesims_inputs_and_published_intervals():
    """AIReSim's config.yaml values (no priors), its fixed repair pipeline's cure probability, and
    each published interval = t(0.975, 29) x sd / sqrt(30) from the report's standard deviations."""
    case = backtesting.read_case(backtesting.FOLDER / "airesim_default.yaml")
    assert case.reps == 20 and case.loaded.priors == [] and case.kind == "reliability"
    plan = plan_of(case.loaded)
    w, p = plan.workloads[0], plan.pools[0]
    assert w.n == 4096 and w.fail_rate_per_h == pytest.approx(4096 * 0.01 / 24, rel=1e-12)
    assert w.length_h_on[0] == pytest.approx(256 * 24) and w.detect_h == pytest.approx(1 / 3)
    assert w.restart_h_on[0] == 0.0 and w.write_h == 0.0
    assert (p.lemon_fraction, p.lemon_multiplier) == (0.15, 6.0)
    assert p.lemon_cures == pytest.approx(0.6 + 0.4 * 0.8 * 0.8) and (p.capacity0, p.spares) == (4160, 200)
    t = stats.t.ppf(0.975, 29) / math.sqrt(30)
    want = {"makespan_days": (9832.32 / 24, 11.96 / 24), "failures": (11062.0, t * 96.1), "ettr": (0.6249, t * 0.0020)}
    for e in case.expected:
        assert e["statistic"] == "mean"
        assert (e["value"], e["tolerance"]) == pytest.approx(want[e["metric"]], rel=2e-3), e["metric"]


@pytest.mark.parametrize("gpus, mttf_h, rounding", [(1024, 7.9, 0.05), (16384, 1.8, 0.05),
                                                    (131072, 1 / (131072 / 8 * 6.50e-3 / 24), 0.0)])
def test_kokolis_cases_count_the_window_over_the_papers_mttf(gpus, mttf_h, rounding):
    """Expected interruptions = window / MTTF (the published 7.9 h and 1.8 h, within their rounding;
    at 131,072 GPUs the paper's model, node rate x nodes); both failure sources from the priors, and
    no restart, so the window is the running time."""
    case = backtesting.read_case(backtesting.FOLDER / f"kokolis_{gpus}.yaml")
    (e,) = case.expected
    window = case.loaded.scenario.workloads[0].hours_per_run
    assert case.loaded.scenario.workloads[0].accelerators == gpus == case.loaded.scenario.pools[0].count
    assert e["metric"] == "failures + job_failures" and e["statistic"] == "band"
    assert e["value"] == pytest.approx(window / mttf_h, abs=0.05)
    assert e["tolerance"] == pytest.approx(max(window / (mttf_h - rounding) - window / mttf_h,
                                               window / mttf_h - window / (mttf_h + rounding)), abs=0.05)
    assert {"reliability.failure_rate_per_gpu_h", "reliability.job_failure_rate_per_h"} <= {
        u["key"] for u in case.loaded.priors}
    w = plan_of(case.loaded).workloads[0]
    assert w.restart_h_on[0] == 0.0 and w.write_h == 0.0


def test_cli_backtests_the_reliability_cases_with_their_own_reps(cli, tmp_path):
    """The shipped AIReSim and Kokolis cases through the CLI at few replications: AIReSim's case.reps
    (20) is above --reps, so both run 3; AIReSim's figures are means, Kokolis' bands."""
    d = tmp_path / "cases"
    d.mkdir()
    for f in SHIPPED_NEW:
        shutil.copy(backtesting.FOLDER / f, d / f)
    code, text, err = cli("backtest", d, "--reps", "3", "--out", tmp_path / "o")
    assert code == 0, err
    rows = json.loads((tmp_path / "o" / "backtest.json").read_text())["rows"]
    assert sorted({r["case"] for r in rows}) == ["airesim-default", "kokolis-1024", "kokolis-131072", "kokolis-16384"]
    assert all(r["reps"] == 3 for r in rows)
    assert [r["statistic"] for r in rows if r["case"] == "airesim-default"] == ["mean"] * 3
    ai = {r["metric"]: r for r in rows if r["case"] == "airesim-default"}
    # each replication's wall time is exactly 256 days plus 20 minutes a failure (the model's accounting)
    assert ai["makespan_days"]["mean"] * 24 == pytest.approx(256 * 24 + ai["failures"]["mean"] / 3, rel=1e-9)
    assert "airesim-default failures (mean): trainsim mean" in text
