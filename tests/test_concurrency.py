"""Real processes on one result folder (issue 9, items 3, 6, 9, 11, 13): two writers, kill -9 (and a
plain kill) at several moments with 1 and 2 workers, then --resume; disk full on a small tmpfs;
default folders of runs started together. Each `sim` runs as `python -m sim` with this tree on
PYTHONPATH."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SCENARIOS

psutil = pytest.importorskip("psutil", reason="the orphan checks list processes with psutil")

SCEN = SCENARIOS / "bench_reference.yaml"
REPS = ["--reps", "160", "--seed", "9"]  # 8 chunks with 1 worker, 16 with 2
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
FILES = ("replications.parquet", "runs.parquet")

pytestmark = pytest.mark.slow  # real processes, kills and mounts: seconds each


def start(*args, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim", "run", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd, start_new_session=True)


def sim(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", "run", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=120)


def wait_for(cond, timeout: float = 60, what: str = "") -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def records(out: Path) -> int:
    return len(list((out / ".parts").glob("chunk-*.json")))


def alive(procs: list) -> list:
    def up(p):
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in procs if up(p)]


def same_results(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["metrics"] == sb["metrics"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("conc") / "ref"
    r = sim(SCEN, *REPS, "--workers", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.slow
def test_a_second_writer_is_refused_naming_the_owner(tmp_path):
    """The issue's example: --overwrite (and --resume) while another run writes the folder; the
    first run completes every replication."""
    out = tmp_path / "f"
    first = start(SCEN, "--reps", "600", "--seed", "9", "--workers", "1", "--out", out)
    wait_for(lambda: records(out) >= 1, what="a first chunk")
    others = [start(*args) for args in ((SCEN, *REPS, "--out", out, "--overwrite"), ("--resume", out))]
    for p in others:
        _o, err = p.communicate(timeout=60)
        assert p.returncode == 2 and f"another sim (pid {first.pid}) is writing this folder" in err, err
    assert first.poll() is None, "the first run should still be running"
    _o, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    reps, runs = (pq.read_table(out / name).to_pandas() for name in FILES)
    assert list(reps.replication) == list(range(600)) and set(runs.replication) == set(range(600))


def _kill_part_way(out: Path, workers: int) -> None:
    proc = start(SCEN, *REPS, "--workers", str(workers), "--out", out)
    wait_for(lambda: records(out) >= 2, what="two chunks")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_two_resumes_at_once_one_completes_the_other_is_refused(tmp_path, reference):
    out = tmp_path / "f"
    _kill_part_way(out, 1)
    a, b = start("--resume", out, "--workers", "1"), start("--resume", out, "--workers", "1")
    results = [(p.pid, p.communicate(timeout=120), p.returncode) for p in (a, b)]
    codes = sorted(rc for _pid, _io, rc in results)
    assert codes == [0, 2], results
    loser = next(io[1] for _pid, io, rc in results if rc == 2)
    assert "is writing this folder" in loser or "no interrupted run" in loser, loser
    same_results(reference, out)


MOMENTS = {"first-chunk": lambda out, n: records(out) >= 1, "half": lambda out, n: records(out) >= n // 2,
           "report": lambda out, n: (out / "manifest.json").exists()}


@pytest.mark.parametrize("workers,moment,sig", [  # each moment, 1 and 2 workers, kill -9 and a plain kill
    (1, "first-chunk", signal.SIGKILL),
    (2, "half", signal.SIGTERM),
    (1, "report", signal.SIGKILL),
])
def test_a_killed_run_leaves_no_worker_and_resumes_to_the_same_files(tmp_path, reference, workers, moment, sig):
    out = tmp_path / "k"
    proc = start(SCEN, *REPS, "--workers", str(workers), "--out", out)
    n_chunks = 8 if workers == 1 else 16
    wait_for(lambda: MOMENTS[moment](out, n_chunks) or proc.poll() is not None, what=moment)
    children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    assert len(children) <= workers
    proc.send_signal(sig)  # the parent only: its workers must notice on their own
    proc.wait()
    wait_for(lambda: not alive(children), timeout=5, what="the workers to exit")
    if (out / "report.html").exists():  # the run finished before the signal
        return
    listing = sorted(p.name for p in (out / ".parts").iterdir()) if (out / ".parts").exists() else []
    time.sleep(0.3)
    assert listing == (sorted(p.name for p in (out / ".parts").iterdir()) if listing else []), "a worker wrote on"
    r = sim("--resume", out, "--workers", str(workers))
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").exists() and not (out / ".parts").exists() and not (out / ".lock").exists()
    same_results(reference, out)


def test_workers_are_capped_at_the_cores_and_the_chunks(tmp_path):
    out = tmp_path / "w"
    proc = start(SCEN, "--reps", "160", "--workers", "64", "--out", out)
    wait_for(lambda: records(out) >= 1 or proc.poll() is not None, what="a chunk")
    most = 0
    while proc.poll() is None:
        try:
            most = max(most, len(psutil.Process(proc.pid).children()))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    _o, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cores = len(os.sched_getaffinity(0))
    assert most <= cores and f"--workers 64 is more than this machine's {cores} cores: using {cores}" in err


def test_two_runs_started_together_get_default_folders_of_their_own(tmp_path):
    procs = [start(SCEN, "--reps", "10", "--workers", "1", cwd=tmp_path) for _ in range(3)]
    for p in procs:
        _o, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    folders = list((tmp_path / "outputs" / "bench-reference").iterdir())
    assert len(folders) == 3 and all((f / "report.html").exists() for f in folders)


def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


@pytest.mark.slow
def test_disk_full_exits_2_keeps_the_finished_chunks_and_resumes(tmp_path, reference):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    _mount_tmpfs(mnt, "200k")
    try:
        out = mnt / "x"
        r = sim(SCEN, *REPS, "--workers", "2", "--out", out)
        assert r.returncode == 2 and "the disk is full" in r.stderr and f"sim run --resume {out}" in r.stderr, \
            r.stderr
        assert not list((out / ".parts").glob(".*.tmp")) and not (out / ".lock").exists()
        assert not (out / "summary.json").exists()
        kept = records(out)
        subprocess.run(["mount", "-o", "remount,size=50m", str(mnt)], check=True)
        r = sim("--resume", out, "--workers", "2")
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "manifest.json").read_text())["resumed_chunks"] == kept
        same_results(reference, out)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
