"""sim backtest: the scoring arithmetic on cases whose answer is known in closed form, bad case
files (exit 2 naming the file and the key), the files the CLI writes, and the table in
docs/validation.md kept current."""

import json
import re
import textwrap

import pytest

import sim
from sim import backtesting

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
