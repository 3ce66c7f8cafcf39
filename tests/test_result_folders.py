"""Result folders (issue 9, items 3, 9, 11, 13, 14, 16), in process: what a resume trusts, folder
mistakes that exit 2 with what to do, default folder names, byte-identical files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

from sim import api, outputs, runner
from sim.montecarlo import ChunkResult
from tests.conftest import SCENARIOS

SCEN = SCENARIOS / "bench_reference.yaml"
ARGS = ["--reps", "40", "--seed", "5", "--workers", "1"]
FILES = ("replications.parquet", "runs.parquet")


def same_bytes(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref"
    api.run(SCEN, reps=40, seed=5, workers=1, out=out)
    return out


def interrupted(tmp_path: Path) -> Path:
    """A folder as a run killed before publishing leaves it: every chunk's parts and the state."""
    loaded = api.load(SCEN)
    settings = api.run_settings(loaded.scenario, 40, 5, 1)
    out = tmp_path / "int"
    out.mkdir()
    runner.execute(loaded, settings, out, extra_state={"file": str(SCEN), "variant": None, "set": []})
    for name in FILES:
        (out / runner.PARTS / name).unlink()
    return out


def test_resume_reruns_a_missing_runs_part_the_issue_example(cli, tmp_path, reference, caplog):
    out = interrupted(tmp_path)
    (out / ".parts" / "runs-000003.arrow").unlink()
    code, _o, err = cli("run", "--resume", out)
    assert code == 0, err
    same_bytes(reference, out)
    assert json.loads((out / "manifest.json").read_text())["resumed_chunks"] == 7
    assert "chunk 3 of the interrupted run: runs-000003.arrow is missing; it is run again" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate-runs", "truncate-reps", "flip-byte", "corrupt-record", "no-record",
                                    "extra-errors"])
def test_resume_reruns_damaged_parts(cli, tmp_path, reference, damage):
    out = interrupted(tmp_path)
    parts = out / ".parts"
    if damage.startswith("truncate"):
        p = parts / ("runs-000002.arrow" if damage == "truncate-runs" else "reps-000002.parquet")
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "flip-byte":
        p = parts / "runs-000002.arrow"
        data = bytearray(p.read_bytes())
        data[len(data) // 2] ^= 0xFF
        p.write_bytes(bytes(data))
    elif damage == "corrupt-record":
        (parts / "chunk-000002.v2.json").write_text("{not json")
    elif damage == "no-record":
        (parts / "chunk-000002.v2.json").unlink()
    else:  # a stray file that no chunk record lists is not read as this chunk's errors
        (parts / "chunk-000002.v2.json").write_text(json.dumps({"chunk": 2, "replications": 4, "files": {}}))
    code, _o, err = cli("run", "--resume", out)
    assert code == 0, err
    same_bytes(reference, out)
    assert json.loads((out / "manifest.json").read_text())["resumed_chunks"] == 7


@pytest.mark.parametrize("state", ["{not json", "{}", ""])
def test_a_corrupt_resume_state_exits_2_and_keeps_the_parts(cli, tmp_path, state):
    out = interrupted(tmp_path)
    (out / ".parts" / "state.json").write_text(state)
    before = sorted(p.name for p in (out / ".parts").iterdir())
    code, _o, err = cli("run", "--resume", out)
    assert code == 2 and "state.json is unreadable or incomplete" in err and "--overwrite" in err
    assert sorted(p.name for p in (out / ".parts").iterdir()) == before


def test_resume_refuses_other_reps_seed_sampling(cli, tmp_path):
    out = interrupted(tmp_path)
    for flag, value in (("--reps", "80"), ("--seed", "6"), ("--sampling", "lhs")):
        code, _o, err = cli("run", "--resume", out, flag, value)
        assert code == 2 and f"{flag}: {value} differs from the interrupted run's" in err, err
    code, _o, err = cli("run", "--resume", out, "--out", tmp_path / "x")
    assert code == 2 and "does not go with --resume" in err
    code, _o, err = cli("run", "--resume", out, "--reps", "40", "--seed", "5")  # the same values are fine
    assert code == 0, err


def test_resume_writes_a_missing_report(cli, tmp_path, reference):
    out = tmp_path / "r"
    code, _o, err = cli("run", SCEN, *ARGS, "--out", out)
    assert code == 0, err
    for p in out.iterdir():
        if p.suffix in (".html", ".md", ".png"):
            p.unlink()
    code, printed, err = cli("run", "--resume", out)
    assert code == 0, err
    assert (out / "report.html").exists() and "40 replications" in printed
    same_bytes(reference, out)
    code, _o, err = cli("run", "--resume", out)  # nothing left to do
    assert code == 2 and "no interrupted run to resume" in err


def test_a_folder_locked_by_a_live_process_is_refused_and_a_dead_owners_lock_taken_over(cli, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    holder = subprocess.Popen(["python", "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(out / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.lockf(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
                               "print('locked', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, _o, err = cli("run", SCEN, *ARGS, "--out", out, "--overwrite")
        assert code == 2 and f"another sim (pid {holder.pid}) is writing this folder" in err
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".lock").exists()  # left behind by its dead owner: taken over
    code, _o, err = cli("run", SCEN, *ARGS, "--out", out, "--overwrite")
    assert code == 0, err
    assert not (out / ".lock").exists()


def test_the_lock_excludes_this_process_too(tmp_path):
    with outputs.FolderLock() as lock:
        lock.acquire(tmp_path)
        with pytest.raises(outputs.OutputError, match="already writing"):
            outputs.FolderLock().acquire(tmp_path)
    outputs.FolderLock().acquire(tmp_path).release()


def _bad_out(tmp_path: Path, case: str) -> Path:
    if case == "below-a-file":
        (tmp_path / "f").write_text("keep me")
        return tmp_path / "f" / "sub"
    if case == "dangling-symlink":
        (tmp_path / "link").symlink_to(tmp_path / "nowhere")
        return tmp_path / "link"
    if case == "long-name":
        return tmp_path / ("a" * 300)
    return Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff"))


@pytest.mark.parametrize("case,message", [("below-a-file", "is a file, not a folder"),
                                          ("dangling-symlink", "which does not exist"),
                                          ("long-name", "too long"), ("not-utf8", "not valid UTF-8")])
def test_bad_out_folders_exit_2_saying_what_to_do(cli, tmp_path, case, message):
    out = _bad_out(tmp_path, case)
    code, _o, err = cli("run", SCEN, *ARGS, "--out", out)
    assert code == 2 and message in err and "--out" in err, err
    if case == "below-a-file":
        assert (tmp_path / "f").read_text() == "keep me"


def test_a_read_only_folder_exits_2(cli, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(out)],
                          capture_output=True).returncode:
            pytest.skip("running as root (permissions do not apply) and cannot mount a read-only tmpfs")
    else:
        out.chmod(0o555)
    try:
        code, _o, err = cli("run", SCEN, *ARGS, "--out", out / "x" if os.geteuid() == 0 else out)
        assert code == 2 and "cannot write there" in err, err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(out)], check=True)
        else:
            out.chmod(0o755)


def test_default_folders_started_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folders = [api.default_out("p") for _ in range(5)]
    assert len(set(folders)) == 5 and all(f.is_dir() and not any(f.iterdir()) for f in folders)
    assert folders[0].name.count("-") == 1  # the first keeps the plain timestamp


def test_runs_parquet_bytes_do_not_depend_on_chunking(tmp_path, monkeypatch):
    """Row groups of ROW_GROUP rows whatever the chunk sizes: the same bytes."""
    monkeypatch.setattr(runner, "ROW_GROUP", 7)
    outs = []
    for name, sizes in (("a", [5, 5, 5, 5]), ("b", [13, 7]), ("c", [20])):
        parts = tmp_path / name
        parts.mkdir()
        asm = runner.Assembler(tmp_path, parts)
        start = 0
        for n in sizes:
            reps = list(range(start, start + n))
            runs = {"replication": reps, "workload": ["w"] * n, "cost_usd": [r * 1.5 for r in reps]}
            asm._add_runs(pa.table(runs))
            start += n
        asm.frames = []
        asm.close()
        outs.append((parts / "runs.parquet").read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_modules_wanted_after_the_run_are_imported_while_workers_run_it(tmp_path, monkeypatch):
    """Issue 13: with worker processes, `preload` modules are imported by a thread of the run's
    process during the run; a serial run does not (they would only take turns with the simulation).
    Arrow's allocator, switched for the run, is restored."""
    import sys
    import threading

    (tmp_path / "sim_probe_preload.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = api.load(SCEN)
    pool = pa.default_memory_pool().backend_name
    for workers in (1, 2):
        sys.modules.pop("sim_probe_preload", None)
        settings = api.run_settings(loaded.scenario, 10, 5, workers)  # 2 chunks of 5
        pooled = runner.pool_size(settings, 2) > 1  # a 1-core machine runs it serially
        runner.execute(loaded, settings, tmp_path / f"w{workers}", preload=("sim_probe_preload",))
        for t in threading.enumerate():
            if t.name == "sim-preload":
                t.join(10)
        assert ("sim_probe_preload" in sys.modules) == (workers == 2 and pooled)
        assert pa.default_memory_pool().backend_name == pool


def test_chunk_records_name_each_part(tmp_path):
    from sim.records import RUN_COLUMNS, RunColumns

    runs = RunColumns()
    runs.add(0, [(float(i),) for i in range(len(RUN_COLUMNS))])  # one run of replication 0, as columns
    res = ChunkResult(index=4, rows=[{"replication": 0, "cost_usd": 1.0}], runs=runs, errors=[])
    runner.write_chunk(tmp_path, res)
    meta = json.loads((tmp_path / runner.chunk_record(4)).read_text())
    assert set(meta["files"]) == {"reps-000004.parquet", "runs-000004.arrow"} and meta["replications"] == 1
    assert runner.chunk_problem(tmp_path, 4, 1) is None
    assert "not 2" in runner.chunk_problem(tmp_path, 4, 2)
    # the runs, read back as the assembler reads them, are the columns written
    with pa.OSFile(str(tmp_path / "runs-000004.arrow")) as f:
        back = pa.ipc.open_file(f).read_all()
    assert back.column_names == ["replication", *RUN_COLUMNS] and back.column("cost_usd").to_pylist() == [
        float(RUN_COLUMNS.index("cost_usd"))]
    # a chunk written by an earlier version (its runs as Parquet, its record chunk-<i>.json) is run
    # again, not read without its runs; and the record's new name keeps such a version, looking for
    # chunk-<i>.json, from taking a chunk of this one without its runs
    assert runner.chunk_record(4) != "chunk-000004.json"
    meta["files"] = {("runs-000004.parquet" if k.startswith("runs-") else k): v for k, v in meta["files"].items()}
    (tmp_path / runner.chunk_record(4)).rename(tmp_path / "chunk-000004.json")
    (tmp_path / "chunk-000004.json").write_text(json.dumps(meta))
    (tmp_path / "runs-000004.arrow").rename(tmp_path / "runs-000004.parquet")
    assert "earlier version" in runner.chunk_problem(tmp_path, 4, 1)


@pytest.mark.slow
def test_files_are_byte_identical_with_1_and_2_workers(cli, tmp_path):
    """Item 16: chunks of 20 (1 worker) and 10 (2 workers) replications, the same bytes."""
    for w in ("1", "2"):
        code, _o, err = cli("run", SCEN, "--reps", "160", "--seed", "2", "--workers", w, "--out", tmp_path / w)
        assert code == 0, err
    m1, m2 = (json.loads((tmp_path / w / "manifest.json").read_text()) for w in ("1", "2"))
    assert m1["chunk_size"] != m2["chunk_size"]
    same_bytes(tmp_path / "1", tmp_path / "2")


def test_a_parallel_run_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """Worker processes fork from a frozen heap (gc.freeze): after the run the caller's heap is not
    frozen, and a caller's own freeze (a preforking server) is left in place, not undone."""
    import gc

    import sim

    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "bench_reference.yaml"
    assert gc.get_freeze_count() == 0
    sim.run(scenario, reps=8, workers=2, out=tmp_path / "a")
    assert gc.get_freeze_count() == 0
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        sim.run(scenario, reps=8, workers=2, out=tmp_path / "b")
        assert gc.get_freeze_count() > frozen // 2 > 0  # (a frozen object may still die of its refcount)
    finally:
        gc.unfreeze()
