"""Per-run records (issue 13, item 2): kept as numpy columns, and `--runs all|none|sample:N|auto`
(or `simulation.runs`) chooses which replications' runs go to runs.parquet."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim import api, runner
from sim.records import RUN_COLUMNS, RunColumns, run_rows

SCEN = """\
project: {name: kept, start: 2026-01-01}
pools:
  - {name: gpus, accelerator: h100, count: 16, price_usd_per_gpu_h: 2.0}
workloads:
  - name: train
    runs: 3
    hours_per_run: 5 h
    accelerators: 8
    run_length: {kind: lognormal, sigma: 0.5}
reliability: {mtbf_per_gpu: 200 h, restart: 6 min, checkpoint: {interval: 1 h, write: 0 s}}
simulation: {priors: off}
"""


def _run(path, **kw):
    return api.run(path, reps=6, seed=4, workers=1, **kw)


def test_runs_none_and_sample_keep_the_same_replications_and_those_runs(write):
    path = write(SCEN)
    full, none, some = (_run(path, out=None, runs=k) for k in ("all", "none", "sample:2"))
    for r in (none, some):  # the replications do not depend on what is kept of the runs
        pd.testing.assert_frame_equal(r.replications, full.replications)
    assert len(full.runs) == 18 and sorted(set(full.runs["replication"])) == list(range(6))
    pd.testing.assert_frame_equal(some.runs, full.runs[full.runs["replication"] < 2].reset_index(drop=True))
    with pytest.raises(ValueError, match="kept no per-run records"):
        none.runs  # noqa: B018
    assert some.manifest["runs_kept_replications"] == 2 and none.manifest["runs"] == "none"


def test_auto_keeps_all_of_a_small_run_and_a_sample_above_the_limit_and_says_so(write, monkeypatch, caplog):
    s = runner.Settings(seed=0, reps=10_000, runs_per_rep=500)  # 5,000,000 rows: all
    assert s.keep_runs() is None
    s.reps = 10_001
    assert s.keep_runs() == runner.AUTO_RUN_ROWS // 500
    assert runner.Settings(seed=0, reps=5, runs="sample:9").keep_runs() == 5
    big = {"seed": 0, "reps": 1000, "workers": 2, "runs_per_rep": 400_000}  # chunks bounded by the rows kept
    assert runner.Settings(**big).chunk_size() == 1 and runner.Settings(**big, runs="none").chunk_size() == 63
    monkeypatch.setattr(runner, "AUTO_RUN_ROWS", 10)  # 6 replications x 3 runs = 18 rows
    with caplog.at_level(logging.WARNING, logger="sim.runner"):
        r = _run(write(SCEN), out=None)
    assert sorted(set(r.runs["replication"])) == [0, 1, 2]
    assert "keeping those of the first 3 of 6 replications" in caplog.text and "--runs all" in caplog.text


def test_bad_runs_values_exit_2_naming_the_flag_or_key(cli, write, tmp_path):
    code, _o, err = cli("run", write(SCEN), "--reps", "2", "--runs", "sample:0", "--out", tmp_path / "a")
    assert code == 2 and "--runs" in err and "sample:N" in err
    bad = write(SCEN.replace("priors: off}", "priors: off, runs: most}"), "bad.yaml")
    code, _o, err = cli("run", bad, "--reps", "2", "--out", tmp_path / "b")
    assert code == 2 and "simulation.runs" in err and "got 'most'" in err


def test_resume_keeps_the_interrupted_runs_setting(cli, write, tmp_path):
    path = write(SCEN)
    loaded = api.load(path)
    settings = api.run_settings(loaded.scenario, 6, 4, 1, runs="none")
    out = tmp_path / "int"
    out.mkdir()
    runner.execute(loaded, settings, out, extra_state={"file": str(path), "variant": None, "set": []})
    code, _o, err = cli("run", "--resume", out, "--runs", "all")
    assert code == 2 and "--runs: all differs from the interrupted run's none" in err
    code, _o, err = cli("run", "--resume", out)
    assert code == 0, err
    assert (out / "replications.parquet").exists() and not (out / "runs.parquet").exists()


def test_run_columns_hold_the_rows_with_their_types():
    """Clock readings are float64 even when whole (a column typed by its values changed type from
    one chunk to the next, which runs.parquet could not take); counts int64, names objects."""
    class W:
        class w:
            name = "w"

    class P:
        class p:
            name = "p"

    class R:
        def __init__(self, i, submit):
            for f in ("failures", "job_failures", "planned", "loss_spikes", "unrecoverable", "domain_failures",
                      "preemptions", "reruns", "attempts"):
                setattr(self, f, i)
            for f in ("end", "wait_h", "alloc_gpu_h", "productive", "lost", "overhead", "down_gpu_h",
                      "restart_gpu_h", "write_gpu_h", "straggler_gpu_h", "repair_wait_gpu_h", "ettr",
                      "ckpt_interval_h", "cost"):
                setattr(self, f, i + 0.5)
            self.wl, self.pool, self.idx, self.submit_t, self.first_start, self.abandoned = W, P, i, submit, 0, False

    cols = RunColumns()
    cols.add(7, list(zip(*run_rows([R(0, 0), R(1, 0)]), strict=True)))
    assert cols.columns()["submit_h"].dtype == np.float64 and cols.columns()["start_h"].dtype == np.float64
    cols.add(8, list(zip(*run_rows([R(2, 1.5)]), strict=True)))
    c = cols.columns()
    assert len(cols) == 3 and list(c) == ["replication", *RUN_COLUMNS]
    assert c["replication"].tolist() == [7, 7, 8] and c["submit_h"].tolist() == [0.0, 0.0, 1.5]
    assert c["submit_h"].dtype == np.float64 and c["start_h"].dtype == np.float64 and c["run"].dtype == np.int64
    assert c["workload"].tolist() == ["w"] * 3 and c["workload"].dtype == object
    assert c["cost_usd"].tolist() == [0.5, 1.5, 2.5] and c["abandoned"].dtype == np.bool_


# RunRecord's columns and the RunState attribute each is read from (run_rows writes them out by hand)
SOURCE = {"workload": "wl.w.name", "run": "idx", "pool": "pool.p.name", "submit_h": "submit_t",
          "start_h": "first_start", "end_h": "end", "queue_wait_h": "wait_h", "attempts": "attempts",
          "failures": "failures", "job_failures": "job_failures", "planned": "planned", "loss_spikes": "loss_spikes",
          "unrecoverable": "unrecoverable", "domain_failures": "domain_failures", "preemptions": "preemptions",
          "reruns": "reruns", "abandoned": "abandoned", "gpu_hours": "alloc_gpu_h",
          "productive_gpu_hours": "productive", "lost_gpu_hours": "lost", "overhead_gpu_hours": "overhead",
          "down_gpu_hours": "down_gpu_h", "restart_gpu_hours": "restart_gpu_h", "write_gpu_hours": "write_gpu_h",
          "straggler_gpu_hours": "straggler_gpu_h", "repair_wait_gpu_hours": "repair_wait_gpu_h", "ettr": "ettr",
          "ckpt_interval_h": "ckpt_interval_h", "cost_usd": "cost"}


def test_run_rows_read_each_column_from_its_own_attribute():
    from types import SimpleNamespace as NS

    from sim.records import run_records
    from sim.runstate import RunState

    assert tuple(SOURCE) == RUN_COLUMNS
    r = RunState(NS(w=NS(n=8, name="wl")), 0, 1.0, 1.0)
    r.pool = NS(p=NS(name="pool"))
    for i, attr in enumerate(SOURCE.values()):
        if "." not in attr:
            setattr(r, attr, 100 + i)  # a different value in every attribute
    expected = tuple({"wl.w.name": "wl", "pool.p.name": "pool"}.get(a, 100 + i) for i, a in enumerate(SOURCE.values()))
    assert run_rows([r]) == [expected]
    assert tuple(run_records([r])[0]) == expected


def test_runs_whose_clock_readings_are_whole_in_one_chunk_and_not_in_the_next(cli, write, tmp_path):
    """Found in review: with 2 runs (both submitted and started at 0 h) in most replications and a
    third (started later, at a fractional hour) in some, the first chunk's start_h was all whole
    numbers, typed int64, and a later chunk's float64 could not be written into runs.parquet: the run
    failed with an internal error. Now the column is float64 in every chunk, and the files are the
    same whatever the worker count."""
    path = write("""
        project: {name: tiny, start: 2026-01-01}
        pools:
          - {name: gpus, accelerator: h100, count: 16, price_usd_per_gpu_h: 2.0}
        workloads:
          - name: train
            runs: {dist: choice, values: [2, 2, 2, 2, 2, 2, 2, 2, 2, 3]}
            params: 1B
            tokens: 20B
            accelerators: 8
            mfu: 0.4
        simulation: {priors: off}
        """)
    tables = []
    for w in ("1", "2"):
        code, _out, err = cli("run", path, "--reps", "40", "--workers", w, "--out", tmp_path / w)
        assert code == 0, err
        tables.append(pq.read_table(tmp_path / w / "runs.parquet"))
    assert tables[0].equals(tables[1])
    start = tables[0].column("start_h").to_numpy()
    assert tables[0].schema.field("start_h").type == pa.float64() and (start != np.floor(start)).any()
