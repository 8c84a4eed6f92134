"""SIGKILL a tiny 'qbench run' at random moments, then resume it: nothing corrupt, nothing stale.

At least ``QBENCH_KILLS`` (10) kills, alternating the whole process group (the run, its fork server
and the worker) and the bench's worker alone (a child of the fork server), at moments drawn from a
seeded RNG (``QBENCH_KILL_SEED``; printed). The killed runs vary: a first run into an empty
workspace, a ``--force`` run over a complete one, and a run whose batch sizes changed (so its
bench is redone). After each kill every JSON of the workspace reads through its typed record and
every temporary file left belongs to a writer that is gone; the resume ('qbench run' again)
exits 0 with a complete report set, leaves no temporary file and no failed record, and nothing
it leaves is stale for its settings. What each resume re-made is printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from qbench.records import BenchResult, TrainRecord, VariantRecord
from qbench.records.io import is_stale_temp
from qbench.workspace import Workspace

SEED = int(os.environ.get("QBENCH_KILL_SEED", "11"))
KILLS = int(os.environ.get("QBENCH_KILLS", "10"))
MODES = ("fp32", "onnx")
RUN = [
    *("run", "--model", "tiny-cnn", "--image-size", "32", "--modes", ",".join(MODES)),
    *("--epochs", "1", "--max-batches", "2", "--iters", "3", "--warmup", "1", "--report", "text"),
    "--no-profile",
]
BATCH_SIZES = ("1", "1,2")  # alternated: the run after a change has a bench to redo
# what the group kills interrupt, in turn: a first run, a run redoing everything, a redone bench
GROUP_RUNS = ("fresh", "force", "batches")
RESUME_TIMEOUT_S = 180
FIRST_GUESS_S = 12.0  # of a whole tiny run, until the first kill and resume have measured one
STEP = re.compile(r"\b[1-4]/4 (?:baseline|quantize|bench|report)\b")


def _command(batch_sizes: str, force: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "qbench.cli.main",
        *RUN,
        "--batch-sizes",
        batch_sizes,
        *(["--force"] * force),
    ]


def _start(cwd: Path, command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            command,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the run, its fork server, the workers
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _family(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _wait_gone(processes: list[psutil.Process]) -> None:
    """Until every process is gone or a zombie (a zombie holds no files and no lock)."""
    deadline = time.monotonic() + 30
    for p in processes:
        while time.monotonic() < deadline:
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    break
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)


def _kill_group(proc: subprocess.Popen, at_s: float) -> bool:
    """SIGKILL the run's whole process group ``at_s`` after its start; False if it ended first."""
    try:
        proc.wait(timeout=at_s)
        return False
    except subprocess.TimeoutExpired:
        pass
    family = _family(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_gone(family)
    return True


def _worker(run_pid: int) -> psutil.Process | None:
    """The bench's worker: a child of the fork server, itself a child of the run."""
    for child in _family(run_pid)[1:]:
        try:
            if "qbench.harness.forkserver" in " ".join(child.cmdline()) and child.ppid() == run_pid:
                workers = child.children()
                return workers[0] if workers else None
        except psutil.NoSuchProcess:
            continue
    return None


def _kill_worker(proc: subprocess.Popen, rng: random.Random) -> bool:
    """SIGKILL the worker of a randomly chosen variant alone, a random moment into its life; the
    run goes on. False if no worker was hit."""
    target, seen = rng.randrange(len(MODES)), []
    while proc.poll() is None:
        worker = _worker(proc.pid)
        if worker is None or worker in seen[:target]:
            time.sleep(0.01)
            continue
        if len(seen) < target:  # an earlier variant's: let it be
            seen.append(worker)
            continue
        time.sleep(rng.uniform(0.0, 0.6))
        try:
            worker.send_signal(signal.SIGKILL)  # psutil checks the pid still names that process
        except psutil.NoSuchProcess:
            continue  # it finished first: the next variant's is the one
        proc.wait(timeout=RESUME_TIMEOUT_S)
        return True
    return False


def _check_records(ws: Workspace) -> None:
    """Every JSON of the workspace reads through its typed record."""
    for path in ws.root.rglob("*.json"):
        rel = path.relative_to(ws.root)
        if rel == Path("baseline/train.json"):
            TrainRecord.from_json(path)
        elif rel.parts[0] == "variants" and path.name == "variant.json":
            VariantRecord.from_json(path)
        elif rel.parts[0] == "results":  # results/<mode>.json and results/failed/<mode>.json
            BenchResult.from_json(path)
        else:
            pytest.fail(f"a JSON file no record reads: {rel}")


def _temps(ws: Workspace) -> list[Path]:
    return sorted(ws.root.rglob(".*.tmp"))


def _fingerprints(ws: Workspace) -> dict[str, str]:
    """sha256 of each record: what a resume rewrote is what changed."""
    paths = [ws.train_json, *ws.variants_dir.glob("*/variant.json"), *ws.result_paths()]
    return {
        str(p.relative_to(ws.root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.is_file()
    }


def _remade(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    changed = [name for name, digest in after.items() if before.get(name) != digest]
    return {
        "baseline": [n for n in changed if n.startswith("baseline/")],
        "converted": sorted(Path(n).parent.name for n in changed if n.startswith("variants/")),
        "benched": sorted(Path(n).stem for n in changed if n.startswith("results/")),
    }


def _phase(log: Path) -> str:
    """The step the run was in when it died (its last step title)."""
    steps = STEP.findall(log.read_text(errors="replace"))
    return steps[-1] if steps else "start-up"


def _failed_modes(ws: Workspace) -> set[str]:
    failed = {p.stem for p in (ws.results_dir / "failed").glob("*.json")}
    for path in ws.result_paths():
        if BenchResult.from_json(path).status == "failed":
            failed.add(path.stem)
    return failed


def _settings(batch_sizes: str):
    """The options and request the resume's command line means, as 'qbench run' builds them."""
    from qbench.cli.baseline import request_from_args
    from qbench.cli.main import build_parser
    from qbench.cli.run import options_from_args

    args = build_parser().parse_args([*RUN, "--batch-sizes", batch_sizes])
    return options_from_args(args), request_from_args(args)


def _check_resumed(
    ws: Workspace, resume: subprocess.CompletedProcess, batch_sizes: str, started: float
) -> None:
    from qbench.pipeline.staleness import baseline_staleness, stale_results, stale_variants

    assert resume.returncode == 0, resume.stdout[-3000:] + resume.stderr[-3000:]
    _check_records(ws)
    assert _temps(ws) == [], "a temporary file survived the resume"
    for mode in MODES:  # a complete report set, written by this resume, from good records
        report = ws.reports_dir / f"{mode}.txt"
        assert report.is_file() and report.stat().st_mtime >= started, f"no fresh report for {mode}"
        assert BenchResult.from_json(ws.result_path(mode)).status == "ok"
    assert not list((ws.results_dir / "failed").glob("*.json")), "a failure was left unresolved"
    options, request = _settings(batch_sizes)
    assert baseline_staleness(ws, request) is None
    assert stale_variants(ws, list(MODES), options.quantize) == {}
    assert stale_results(ws, list(MODES), options.bench) == {}


def test_each_variant_is_written_as_soon_as_it_is_measured(tiny_workspace):
    """What a kill may lose: the callback after each run of a variant finds that variant's record,
    merged over its repeats so far, already on disk, and the next variant's not yet rewritten."""
    from qbench.harness.isolation import bench_modes
    from qbench.pipeline.quantize import quantize
    from qbench.records import BenchOptions, QuantizeOptions

    ws = tiny_workspace
    quantize(ws, ["fp32", "fp16"], QuantizeOptions())
    seen = []

    def on_variant(mode: str, repeat: int, result: BenchResult) -> None:
        on_disk = {p.stem: BenchResult.from_json(p).settings.repeats_done for p in ws.result_paths()}
        seen.append((mode, repeat, on_disk))

    options = BenchOptions(
        batch_sizes=[1], warmup=1, iters=3, threads=1, accuracy=False, isolate=False, repeats=2
    )
    bench_modes(ws, ["fp32", "fp16"], options, on_variant=on_variant)
    assert seen == [
        ("fp32", 0, {"fp32": 1}),
        ("fp16", 0, {"fp32": 1, "fp16": 1}),
        ("fp32", 1, {"fp32": 2, "fp16": 1}),
        ("fp16", 1, {"fp32": 2, "fp16": 2}),
    ]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path):
    rng = random.Random(SEED)
    ws = Workspace(tmp_path / "runs" / "default")
    start = time.perf_counter()
    # whole runs and bench-only runs last about this long: measured as the test goes
    full_s, bench_s = FIRST_GUESS_S, FIRST_GUESS_S / 2
    print(f"\nkill test: seed {SEED}, {KILLS} kills")

    kills, cycle, batches = [], 0, 0
    while len(kills) < KILLS and cycle < 3 * KILLS:
        cycle += 1
        target = "group" if len(kills) % 2 == 0 else "worker"
        what = GROUP_RUNS[(len(kills) // 2) % len(GROUP_RUNS)] if target == "group" else "batches"
        if what == "fresh":
            shutil.rmtree(ws.root, ignore_errors=True)
        if what == "batches":
            batches = 1 - batches
        sizes = BATCH_SIZES[batches]
        log = tmp_path / f"killed-{cycle}.log"
        started = time.perf_counter()
        proc = _start(tmp_path, _command(sizes, force=what == "force"), log)
        if target == "group":
            at_s = rng.uniform(0.3, 0.8 * (bench_s if what == "batches" else full_s))
            hit = _kill_group(proc, at_s)
            moment = f"at {at_s:.1f} s, in {_phase(log)}"
        else:
            hit = _kill_worker(proc, rng)
            moment = f"at {time.perf_counter() - started:.1f} s; the run went on: exit {proc.returncode}"
            if hit:
                bench_s = time.perf_counter() - started
        if not hit:
            proc.wait()
            took = time.perf_counter() - started
            full_s, bench_s = (full_s, took) if what == "batches" else (took, bench_s)
            print(f"  cycle {cycle}: the {what} run ended before its kill, in {took:.0f} s; not counted")
            continue

        # straight after the kill: every record whole, every temporary file a dead writer's
        if ws.root.is_dir():
            _check_records(ws)
        left = _temps(ws) if ws.root.is_dir() else []
        assert all(is_stale_temp(p) for p in left), f"a temporary file of a live writer: {left}"
        failed = _failed_modes(ws) if ws.root.is_dir() else set()
        before = _fingerprints(ws) if ws.root.is_dir() else {}

        killed_s, resume_start = time.perf_counter() - started, time.time()
        resume = subprocess.run(
            _command(sizes), cwd=tmp_path, capture_output=True, text=True, timeout=RESUME_TIMEOUT_S
        )
        _check_resumed(ws, resume, sizes, resume_start - 1)
        if what == "fresh":  # the killed part and the resumed part: about one whole run
            full_s = killed_s + time.time() - resume_start
        if target == "group":
            leftovers = list(Path(tempfile.gettempdir()).glob(f"qbench-{proc.pid}-*"))
            assert leftovers == [], f"the killed bench's job folders survived: {leftovers}"
        remade = _remade(before, _fingerprints(ws))
        assert failed <= set(remade["benched"]), f"a failed bench was not redone: {failed}"
        if target == "worker":  # the run finished the other variants itself: only the killed one is redone
            assert set(remade["benched"]) == failed and not remade["baseline"] and not remade["converted"]
        kills.append((target, what, remade))
        print(
            f"  kill {len(kills)}: {target} of a {what} run, {moment}; killed run {killed_s:.0f} s, "
            f"resume {time.time() - resume_start:.0f} s; temp files left {len(left)}, "
            f"failed records {sorted(failed) or 'none'}; the resume re-made: "
            f"baseline {'yes' if remade['baseline'] else 'no'}, converted {remade['converted'] or 'none'}, "
            f"benched {remade['benched'] or 'none'}"
        )

    assert len(kills) >= KILLS, f"only {len(kills)} kills landed in {cycle} cycles"
    benched = sum(len(r["benched"]) for _, _, r in kills)
    print(
        f"kill test: {len(kills)} kills ({sum(t == 'group' for t, _, _ in kills)} process group, "
        f"{sum(t == 'worker' for t, _, _ in kills)} worker alone) in {time.perf_counter() - start:.0f} s; "
        f"the resumes retrained {sum(bool(r['baseline']) for _, _, r in kills)} times, converted "
        f"{sum(len(r['converted']) for _, _, r in kills)} and benched {benched} variants"
    )
