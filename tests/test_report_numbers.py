"""Every figure the terminal prints is in the report: `sim run`, `sim compare`, `sim compare --sweep`
and `sim sensitivity` run on one small scenario; each word of their output that holds a digit (a
cost, a share, an interval, a date) must appear in report.html and in report.md. Each report kind
is then opened in headless Chromium: it loads without console errors and every image renders."""

from __future__ import annotations

import contextlib
import html
import io
import re
import subprocess

import pytest

from sim.cli import main
from tests.test_report import CHROMIUM, FLAGS

# own: pretraining (about 800 GPU-h) + x fine-tunes of about 8 GPU-h; public: x fine-tunes of 40
# GPU-h: the same cost at about x = 25
SCENARIO = """\
project: {name: nums, start: 2026-01-01, budget_usd: 2000, deadline: 2 w}
pools:
  - {name: gpus, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: pretrain, hours_per_run: {dist: uniform, min: 80, max: 120}, accelerators: 8}
  - {name: finetune, runs: 10, hours_per_run: {dist: uniform, min: 0.5, max: 1.5}, accelerators: 8,
     after: [pretrain]}
reliability: {failure_rate_per_gpu_h: 0.001, restart: 10 min}
simulation: {priors: off}
variants:
  public:
    workloads:
      - {name: finetune, runs: 10, hours_per_run: 5, accelerators: 8}
"""

COMMANDS = {
    "run": ["run", "--reps", "30"],
    "compare": ["compare", "--reps", "20"],
    "sweep": ["compare", "--reps", "10", "--sweep", "workloads[finetune].runs=10:40:30"],
    "sensitivity": ["sensitivity", "--reps", "2", "--n", "4"],
}


def _main(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """{kind: (result folder, what the terminal printed)} for each command."""
    root = tmp_path_factory.mktemp("numbers")
    scenario = root / "s.yaml"
    scenario.write_text(SCENARIO)
    found = {}
    for kind, (command, *args) in COMMANDS.items():
        out = root / kind
        code, printed, err = _main(command, scenario, *args, "--workers", "1", "--out", out)
        assert code == 0, err
        found[kind] = (out, printed.replace(str(out), "OUT"))
    return found


def figures(printed: str) -> set[str]:
    """The words of `printed` that hold a digit, without the punctuation around them."""
    words = (w.strip("()[],;:.…") for w in printed.split())
    return {w for w in words if re.search(r"\d", w) and w != "OUT"}


def page_text(folder) -> str:
    """report.html as the text a reader sees (tags dropped, entities decoded)."""
    page = (folder / "report.html").read_text()
    page = re.sub(r"<script.*?</script>|<img[^>]*>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_every_figure_printed_is_in_the_report(made, kind):
    folder, printed = made[kind]
    shown = figures(printed)
    assert len(shown) > 15, printed  # the output has figures to look for
    text, md = page_text(folder), (folder / "report.md").read_text()
    assert not [w for w in shown if w not in text], printed
    assert not [w for w in shown if w not in md], printed


def test_the_reports_carry_the_risk_the_limits_and_the_break_even(made):
    compare, _ = made["compare"]
    text = page_text(compare)
    assert "P(over budget)" in text and "P(late)" in text and "budget $2.00k; deadline 2026-01-15" in text
    assert "nums, variant public" in page_text(compare / "public")  # a variant's report names it
    sweep, printed = made["sweep"]
    assert "break-even at workloads[finetune].runs = 2" in printed  # near 25: between 20 and 30
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [
        "finetune-runs-10", "finetune-runs-40"]
    assert "![sweep difference](sweep_difference.png)" in (sweep / "report.md").read_text()
    point = sweep / "finetune-runs-40" / "public"  # a point's own report is drawn on asking
    assert (point / "summary.json").exists() and not (point / "report.html").exists()
    assert _main("run", "--resume", point)[0] == 0 and "nums, variant public" in page_text(point)
    sens, printed = made["sensitivity"]
    assert "Sobol" in printed and "Sobol indices of the mean cost" in page_text(sens)
    assert (sens / "sobol.png").read_bytes()[:4] == b"\x89PNG"
    run, _ = made["run"]
    assert (run / "finish_cdf.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_each_report_kind_renders_in_headless_chromium(made, tmp_path):
    for kind, (folder, _printed) in made.items():
        dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / kind}", "--enable-logging=stderr",
                              "--v=0", "--virtual-time-budget=5000", "--dump-dom", (folder / "report.html").as_uri()],
                             capture_output=True, text=True, timeout=120)
        body = re.search(r'<body data-images="(\d+)" data-images-ok="(\d+)"', dom.stdout)
        assert body, (kind, dom.stderr[-2000:])
        pngs = len(list(folder.glob("*.png")))
        assert int(body.group(1)) == int(body.group(2)) == pngs >= 2, kind
        console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not console, (kind, console)
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'shot'}", f"--screenshot={shot}",
                    "--window-size=1200,2000", (made["run"][0] / "report.html").as_uri()], capture_output=True,
                   timeout=120)
    assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 20_000
