"""Actuals in (sim/actuals.py, docs/actuals.md): a generic CSV or Parquet of runs, Slurm's sacct
output mapped by `actuals.map`, a spend ledger; every bad row a ScenarioError naming the file, the
row and the column."""

from datetime import date, datetime

import pandas as pd
import pytest

from sim.actuals import MAX_ISSUES, Actuals, RunActual, read_actuals
from sim.loader import ScenarioError, load

SCENARIO = """\
project: {name: act, start: 2026-01-01}
pools:
  - {name: h100, accelerator: h100, count: 64, price_usd_per_gpu_h: 2.0,
     capacity_changes: [{date: 2026-03-01, count: 128}]}
  - {name: spot, accelerator: h100, count: 16, pricing: spot, price_usd_per_gpu_h: 1.0,
     preemption: {rate_per_node_h: 0.001}}
workloads:
  - {name: sweeps, runs: 20, params: 350M, tokens: 7B, accelerators: 8, mfu: 0.35}
  - {name: pretrain, runs: 2, params: 7B, tokens: 2T, accelerators: 128, mfu: 0.4, after: [sweeps]}
  - {name: finetune, runs: 3, gpu_hours_per_run: 100, accelerators: 8}
simulation: {priors: off}
actuals:
  map:
    "sw-*": sweeps
    "pt-[0-9]*": pretrain
"""

HEADER = "workload,run_id,pool,accelerators,start,end,state,gpu_hours,cost_usd,tokens_done,interruptions\n"
GOOD = HEADER + (
    "sweeps,s1,spot,8,2026-01-02T00:00,2026-01-02T10:00,completed,80,80.0,7B,1\n"
    "sweeps,s2,spot,8,2026-01-03,2026-01-03T05:00,failed,40,$40,,2\n"
    "pretrain,p1,h100,128,2026-03-01T00:00,,running,12800,,500B,0\n"
    "finetune,f1,,8,2026-01-05,2026-01-05,cancelled,0,,,\n"
)


@pytest.fixture
def scn(write):
    return load(write(SCENARIO))


def rows(*lines: str, header: str = HEADER) -> str:
    return header + "".join(line + "\n" for line in lines)


def problem(scn, write, text: str, name: str = "a.csv", **kw) -> str:
    path = write(text, name)
    with pytest.raises(ScenarioError) as e:
        read_actuals(path, scn, **kw)
    msg = e.value.format()
    assert str(path) in msg
    return msg


# -- the generic table -------------------------------------------------------------------------


def test_generic_csv(scn, write):
    a = read_actuals(write(GOOD, "a.csv"), scn)
    assert isinstance(a, Actuals) and len(a.runs) == 4
    s1, s2, p1, f1 = a.runs
    assert s1 == RunActual("sweeps", "s1", "spot", 8, datetime(2026, 1, 2), datetime(2026, 1, 2, 10), "completed",
                           80.0, 80.0, 1.0, 1, 2, tokens_done=7e9)
    assert s2.state == "failed" and s2.cost_usd == 40.0 and s2.progress is None and s2.row == 3
    assert p1.end is None and p1.progress == pytest.approx(0.25) and p1.cost_usd is None
    assert f1.pool is None and f1.interruptions is None
    assert a.as_of == datetime(2026, 3, 1)  # the latest start or end in the data
    assert a.gpu_hours == 12920 and a.cost_usd == 120.0 and a.failures == 1 and a.interruptions == 3
    assert [r.run_id for r in a.unpriced] == ["p1", "f1"]
    assert {k: [r.run_id for r in v] for k, v in a.by_workload().items()} == {
        "sweeps": ["s1", "s2"], "pretrain": ["p1"], "finetune": ["f1"]}
    assert [r.run_id for r in a.in_state("running")] == ["p1"]


def test_parquet_and_ledger(scn, write, tmp_path):
    df = pd.DataFrame({
        "workload": ["pretrain", "sweeps"], "run_id": ["p1", "s1"], "pool": ["h100", None],
        "accelerators": [128, 8], "start": pd.to_datetime(["2026-03-01 00:00", "2026-01-02 00:00"]),
        "end": pd.to_datetime([None, "2026-01-02 12:00"]), "state": ["running", "completed"],
        "gpu_hours": [1280.0, 96.0], "cost_usd": [None, 96.0], "progress": [0.1, None],
    })
    path = tmp_path / "a.parquet"
    df.to_parquet(path)
    ledger = write("date,amount_usd,pool\n2026-01-31,1500,h100\n2026-02-28,-200,\n", "ledger.csv")
    a = read_actuals(path, scn, as_of=date(2026, 3, 1), ledger=ledger)
    p1, s1 = a.runs
    assert p1.start == datetime(2026, 3, 1) and p1.end is None and p1.progress == 0.1 and p1.row == 2
    assert s1.pool is None and s1.end == datetime(2026, 1, 2, 12) and s1.row == 3
    assert a.as_of == datetime(2026, 3, 2)  # a date means the end of that day
    assert [(e.date, e.amount_usd, e.pool, e.row) for e in a.ledger] == [
        (date(2026, 1, 31), 1500.0, "h100", 2), (date(2026, 2, 28), -200.0, None, 3)]
    assert a.cost_usd == 96.0 + 1300.0 and a.ledger_usd == 1300.0


def test_header_only_file_needs_as_of(scn, write):
    a = read_actuals(write(HEADER, "a.csv"), scn, as_of=datetime(2026, 1, 1))
    assert a.runs == () and a.gpu_hours == 0
    assert "give as_of" in problem(scn, write, HEADER)


# -- sacct ---------------------------------------------------------------------------------------

SACCT = """\
JobID|JobName|Partition|Account|Start|End|Elapsed|AllocTRES|State
101|sw-lr3|spot|ml|2026-01-02T00:00:00|2026-01-02T10:30:00|10:30:00|billing=8,cpu=64,gres/gpu=8,node=1|COMPLETED
101.batch|batch||ml|2026-01-02T00:00:00|2026-01-02T10:30:00|10:30:00|cpu=64,gres/gpu=8,node=1|COMPLETED
101.0|python||ml|2026-01-02T00:00:00|2026-01-02T10:30:00|10:30:00|cpu=64,gres/gpu=8,node=1|COMPLETED
102|pt-7b|gpu|ml|2026-02-27T00:00:00|Unknown|1-02:00:00|cpu=1024,gres/gpu:h100=128,node=16|RUNNING
103|sw-lr4|spot|ml|2026-01-03T00:00:00|2026-01-03T01:00:00|01:00:00|gres/gpu=8,gres/gpu:h100=8|NODE_FAIL
104|finetune|h100|ml|None|2026-01-04T00:00:00|00:00:00||CANCELLED by 1234
105|sw-lr5|spot|ml|Unknown|Unknown|00:00:00||PENDING
"""


def test_sacct(scn, write):
    a = read_actuals(write(SACCT, "sacct.txt"), scn)
    assert [r.run_id for r in a.runs] == ["101", "102", "103", "104"]  # steps and pending left out
    sw, pt, fail, ft = a.runs
    assert (sw.workload, sw.pool, sw.accelerators, sw.gpu_hours, sw.state) == ("sweeps", "spot", 8, 84.0, "completed")
    assert sw.cost_usd is None and sw.progress is None and sw.row == 2
    assert (pt.workload, pt.pool, pt.accelerators, pt.end, pt.state) == ("pretrain", None, 128, None, "running")
    assert pt.gpu_hours == 128 * 26
    assert (fail.state, fail.accelerators, fail.gpu_hours) == ("failed", 8, 8.0)  # gres/gpu=N, not counted twice
    assert (ft.workload, ft.state, ft.start, ft.accelerators) == ("finetune", "cancelled", None, 0)
    assert a.as_of == datetime(2026, 2, 27)


def test_sacct_parsable_with_trailing_bars(scn, write):
    text = "\n".join(line + "|" for line in SACCT.splitlines()) + "\n"
    assert len(read_actuals(write(text, "sacct.txt"), scn).runs) == 4


def test_sacct_unmapped_job_name(scn, write):
    text = SACCT.replace("|sw-lr4|", "|eval-7|")
    msg = problem(scn, write, text, "sacct.txt")
    assert "row 6.JobName: no pattern of actuals.map matches job name 'eval-7'" in msg
    assert "'sw-*' -> sweeps, 'pt-[0-9]*' -> pretrain" in msg


def test_sacct_bad_cells(scn, write):
    text = (SACCT.replace("|10:30:00|billing", "|ten hours|billing")
            .replace("NODE_FAIL", "EXPLODED").replace("2026-02-27T00:00:00", "2026-02-30T00:00:00"))
    msg = problem(scn, write, text, "sacct.txt")
    assert "row 2.Elapsed: expected an elapsed time" in msg
    assert "row 6.State: unknown Slurm state 'EXPLODED'" in msg
    assert "row 5.Start: expected an ISO date" in msg


def test_sacct_missing_columns_and_gpuless_job(scn, write):
    msg = problem(scn, write, "JobID|JobName|State\n1|x|COMPLETED\n", "sacct.txt")
    assert "row 1: looks like sacct output, but lacks the column(s) Partition, Start" in msg
    msg = problem(scn, write, SACCT.replace("billing=8,cpu=64,gres/gpu=8,node=1", "cpu=64,node=1"), "sacct.txt")
    assert "row 2.AllocTRES: no GPUs in 'cpu=64,node=1'" in msg


# -- bad rows ------------------------------------------------------------------------------------

BASE = "sweeps,s1,spot,8,2026-01-02T00:00,2026-01-02T10:00,completed,80,80,,"


@pytest.mark.parametrize(("row", "expected"), [
    (BASE.replace("sweeps", "sweep", 1), "row 2.workload: unknown workload 'sweep'; did you mean 'sweeps'?"),
    (BASE.replace("spot", "spto"), "row 2.pool: unknown pool 'spto'; did you mean 'spot'?"),
    (BASE.replace("2026-01-02T10:00", "2026-01-01T10:00"),
     "row 2.end: 2026-01-01 10:00:00 is before the start (2026-01-02 00:00:00)"),
    (BASE.replace(",8,", ",32,"), "row 2.accelerators: 32 accelerators, more than pool spot ever has (16)"),
    (BASE.replace("completed", "done"), "row 2.state: unknown state 'done'"),
    (BASE.replace(",80,80,", ",-80,80,"), "row 2.gpu_hours: must be >= 0, got -80"),
    (BASE.replace(",80,80,", ",80,-5,"), "row 2.cost_usd: must be >= 0, got -5"),
    (BASE.replace(",80,80,", ",eighty,80,"), "row 2.gpu_hours: expected a number"),
    (BASE.replace("2026-01-02T00:00", "2026-13-02"), "row 2.start: expected an ISO date or date-time"),
    (BASE.replace("2026-01-02T10:00", "yesterday"), "row 2.end: expected an ISO date or date-time"),
    (BASE.replace(",8,", ",8.5,"), "row 2.accelerators: must be a whole number >= 0, got 8.5"),
    (BASE.replace(",80,80,", ",80,,"), None),
    (BASE.replace("sweeps,s1", ",s1"), "row 2.workload: is empty; a value is needed"),
    (BASE.replace("2026-01-02T10:00", "").replace("completed", "failed"),
     "row 2.end: a failed run needs its end (empty only while running)"),
    (BASE.replace("completed", "running"), "row 2.end: a running run has no end yet"),
    (BASE + "9", None),
    (BASE.replace(",,", ",8T,"), "row 2.tokens_done: 8e+12 is more than a run of workload sweeps has (7e+09 tokens)"),
])
def test_bad_row(scn, write, row, expected):
    if expected is None:  # the control rows read fine
        assert len(read_actuals(write(rows(row), "a.csv"), scn).runs) == 1
        return
    assert expected in problem(scn, write, rows(row))


def test_progress_checks(scn, write):
    header = HEADER.replace("tokens_done", "progress,tokens_done")
    base = "sweeps,s1,spot,8,2026-01-02T00:00,2026-01-02T10:00,completed,80,80,{p},{t},"
    msg = problem(scn, write, rows(base.format(p="1.2", t=""), base.format(p="0.5", t="1B"),
                                   base.replace("sweeps", "finetune").format(p="", t="1B"), header=header))
    assert "row 2.progress: must be between 0 and 1" in msg
    assert "row 3.tokens_done: give progress or tokens_done, not both" in msg
    assert "row 4.tokens_done: workload finetune gives no tokens" in msg
    assert read_actuals(write(rows(base.format(p="40%", t=""), header=header), "b.csv"), scn).runs[0].progress == 0.4


def test_dates_after_as_of(scn, write, tmp_path):
    msg = problem(scn, write, GOOD, as_of=date(2026, 1, 2))
    assert "row 3.start" not in msg  # 2026-01-03 00:00 is the end of 2026-01-02, not after it
    assert "row 3.end: 2026-01-03 05:00:00 is after as_of (2026-01-03 00:00:00)" in msg
    assert "row 4.start: 2026-03-01 00:00:00 is after as_of" in msg
    ledger = write("date,amount_usd\n2026-03-05,10\n", "ledger.csv")
    with pytest.raises(ScenarioError) as e:
        read_actuals(write(GOOD, "a.csv"), scn, ledger=ledger, as_of=datetime(2026, 3, 4))
    assert f"{ledger}: row 2.date: 2026-03-05 is after as_of" in e.value.format()


def test_columns(scn, write):
    msg = problem(scn, write, GOOD.replace("gpu_hours", "gpu_hour").replace(",cost_usd", ",colour"))
    assert "row 1.gpu_hour: unknown column 'gpu_hour'; did you mean 'gpu_hours'?" in msg
    assert "row 1.colour: unknown column 'colour'" in msg
    assert "row 1: missing column(s) gpu_hours, cost_usd" in msg
    ledger = write("date,amount,pool\n2026-01-01,5,h100\n", "ledger.csv")
    with pytest.raises(ScenarioError) as e:
        read_actuals(write(GOOD, "a.csv"), scn, ledger=ledger)
    assert "row 1.amount: unknown column 'amount'; did you mean 'amount_usd'?" in e.value.format()


def test_many_problems_at_once_and_empty_file(scn, write):
    bad = [BASE.replace("sweeps", f"nope{i}", 1) for i in range(30)]
    msg = problem(scn, write, rows(*bad))
    assert msg.count("unknown workload") == MAX_ISSUES and "... and 10 more problems" in msg
    assert "the file is empty" in problem(scn, write, "\n\n")
    assert "has 3 values, but the header has 11 columns" in problem(scn, write, rows("a,b,c"))


def test_missing_and_unreadable_files(scn, tmp_path):
    with pytest.raises(ScenarioError, match="no such file"):
        read_actuals(tmp_path / "nope.csv", scn)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(ScenarioError, match="cannot read the file as Parquet"):
        read_actuals(tmp_path / "bad.parquet", scn)


# -- the scenario key ----------------------------------------------------------------------------


def test_actuals_map_target_must_be_a_workload(cli, write):
    p = write(SCENARIO.replace('"sw-*": sweeps', '"sw-*": sweep'))
    code, out, err = cli("validate", p)
    assert code == 2 and "Traceback" not in err
    assert f"{p}:14: actuals.map.sw-*: no workload named 'sweep'; did you mean 'sweeps'?" in err
    code, out, err = cli("validate", write(SCENARIO, "ok.yaml"))
    assert code == 0, err


def test_as_of_as_text(scn, write):
    path = write(GOOD, "a.csv")
    assert read_actuals(path, scn, as_of="2026-03-01").as_of == datetime(2026, 3, 2)
    assert read_actuals(path, scn, as_of="2026-03-01T12:00").as_of == datetime(2026, 3, 1, 12)
    assert "as_of: expected an ISO date" in problem(scn, write, GOOD, as_of="March")


DOC_SCENARIO = """\
project: {name: doc, start: 2026-01-01}
pools:
  - {name: h100-spot, accelerator: h100, count: 64, pricing: spot, price_usd_per_gpu_h: 2.5,
     preemption: {band: "5-10%"}}
  - {name: h100-reserved, accelerator: h100, count: 512, pricing: reserved, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: sweeps, runs: 400, params: 350M, tokens: 7B, accelerators: 8, mfu: 0.35}
  - {name: pretrain, runs: 1, params: 7B, tokens: 2T, accelerators: 512, mfu: 0.4}
  - {name: finetune, runs: 3, gpu_hours_per_run: 100, accelerators: 8}
simulation: {priors: off}
actuals: {map: {"sweep-*": sweeps, "pt7b-*": pretrain, "ft-[0-9]*": finetune}}
"""


def test_doc_examples_read(write):
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "actuals.md").read_text()
    loaded = load(write(DOC_SCENARIO))
    csv_block, ledger_block = re.findall(r"```csv\n(.*?)```", text, re.S)
    sacct_block = re.findall(r"```text\n(JobID.*?)```", text, re.S)[0]
    a = read_actuals(write(csv_block, "a.csv"), loaded, ledger=write(ledger_block, "ledger.csv"))
    assert [r.state for r in a.runs] == ["completed", "failed", "running"] and a.ledger_usd == 19400
    b = read_actuals(write(sacct_block, "sacct.txt"), loaded)
    assert [(r.workload, r.accelerators) for r in b.runs] == [("sweeps", 8), ("pretrain", 512), ("sweeps", 8)]


def test_quoted_cells_and_crlf(scn, write, tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(("\ufeff" + GOOD.replace("\n", "\r\n").replace(",s1,", ',"s1, the first",')).encode())
    a = read_actuals(path, scn)
    assert a.runs[0].run_id == "s1, the first" and len(a.runs) == 4
