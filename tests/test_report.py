"""report.html / report.md / PNG plots, and the page opened in headless Chromium: it loads without
console errors and every image renders."""

import re
import shutil
import subprocess

import pytest

from tests.conftest import MINIMAL, SCENARIOS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def make_run(cli, write, tmp_path):
    text = MINIMAL.replace("tokens: 20B", "tokens: {dist: uniform, min: 10B, max: 30B}").replace(
        "  start: 2026-01-01", "  start: 2026-01-01\n  budget_usd: 400\n")
    out = tmp_path / "run"
    code, _o, err = cli("run", write(text), "--reps", "50", "--workers", "1", "--out", out)
    assert code == 0, err
    return out


def test_run_writes_report_and_plots(cli, write, tmp_path):
    out = make_run(cli, write, tmp_path)
    page = (out / "report.html").read_text()
    for name in ("cost_histogram.png", "cost_cdf.png", "spend_fan.png", "ettr_histogram.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert page.count('src="data:image/png;base64,') == 4  # embedded: no file or network needed
    assert "http://" not in page and "https://" not in page
    assert "P(cost &gt; budget $400.00)" in page and "Assumptions: the resolved scenario" in page
    md = (out / "report.md").read_text()
    assert "![cost histogram](cost_histogram.png)" in md and "| cost_usd |" in md


@pytest.mark.slow
def test_compare_and_sensitivity_write_reports(cli, tmp_path):
    code, _o, err = cli("compare", SCENARIOS / "start_now_or_wait.yaml", "--reps", "10", "--workers", "1",
                        "--out", tmp_path / "c")
    assert code == 0, err
    assert (tmp_path / "c" / "report.html").read_text().count("data:image/png") == 2
    assert (tmp_path / "c" / "base" / "report.html").exists()
    code, _o, err = cli("sensitivity", SCENARIOS / "uncertain_pretrain.yaml", "--reps", "2", "--no-sobol",
                        "--out", tmp_path / "s")
    assert code == 0, err
    assert "tornado.png" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(cli, write, tmp_path):
    out = make_run(cli, write, tmp_path)
    url = (out / "report.html").as_uri()
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p1'}", "--enable-logging=stderr",
                          "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body, dom.stderr[-2000:]
    assert 'data-images="4"' in body.group(0) and 'data-images-ok="4"' in body.group(0)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", f"--screenshot={shot}",
                    "--window-size=1200,2000", url], capture_output=True, timeout=120)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000


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
