"""A real Dask cluster (issue 13, item 4): a scheduler and two workers started as separate processes
on 127.0.0.1, as on a cluster of machines, and `sim run --backend dask --scheduler` against it. The
result files must be those of a serial run, byte for byte. The processes are stopped whatever happens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sim import api
from tests.conftest import ROOT

pytest.importorskip("distributed")

SCEN = """\
project: {name: cluster, start: 2026-01-01}
pools:
  - {name: gpus, accelerator: h100, count: 32, price_usd_per_gpu_h: 2.0}
workloads:
  - {name: train, runs: 6, hours_per_run: 5 h, accelerators: 8, run_length: {kind: lognormal, sigma: 0.5}}
reliability: {mtbf_per_gpu: 300 h, restart: 6 min, checkpoint: {interval: 1 h, write: 0 s}}
simulation: {priors: off}
"""
FILES = ("replications.parquet", "runs.parquet", "summary.json")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(procs: list[subprocess.Popen]) -> None:
    """Workers first (a worker stopped after its scheduler waits for it to come back), then the
    scheduler; whatever does not stop in a few seconds is killed."""
    for group in (procs[1:], procs[:1]):
        for p in group:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in group:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.slow
def test_sim_run_on_a_scheduler_and_two_worker_processes_gives_the_serial_files(write, tmp_path):
    path = write(SCEN)
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the workers import this checkout's sim
    dask = [sys.executable, "-m", "dask"]
    log = (tmp_path / "scheduler.log").open("w")
    procs: list[subprocess.Popen] = []
    try:
        # idle and death timeouts: the processes end by themselves if this test is killed outright
        procs.append(subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                       "--no-dashboard", "--idle-timeout", "120s"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=log))
        for i in range(2):
            procs.append(subprocess.Popen([*dask, "worker", address, "--name", f"w{i}", "--nthreads", "1",
                                           "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                           "--death-timeout", "60s"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        serial = tmp_path / "serial"
        api.run(path, reps=8, seed=3, workers=1, out=serial)  # while the cluster starts
        out = tmp_path / "dask"
        done = subprocess.run([sys.executable, "-m", "sim", "run", str(path), "--reps", "8", "--seed", "3",
                               "--workers", "2", "--backend", "dask", "--scheduler", address, "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        _stop(procs)
        log.close()
    for name in FILES:
        assert (out / name).read_bytes() == (serial / name).read_bytes(), name
    registered = Path(log.name).read_text().count("Register worker")
    assert registered == 2, Path(log.name).read_text()[-2000:]
    assert all(p.poll() is not None for p in procs)
