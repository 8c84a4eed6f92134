"""DDP training under torchrun (gloo on the CPU), resumable state, and the --nproc launcher."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from qbench.baselines.checkpoint import load_checkpoint
from qbench.baselines.pipeline import RESUME_STATE, BaselineRequest, make_baseline
from qbench.baselines.presets import from_preset
from qbench.errors import QBenchError
from qbench.records import DataConfig, TrainRecord
from qbench.workspace import Workspace

TINY = ["--model", "tiny-cnn", "--image-size", "16", "--max-batches", "3", "--batch-size", "32"]


def _request(epochs: int, resume: bool = False) -> BaselineRequest:
    config = from_preset("paper", epochs=epochs, batch_size=32, max_batches=3, early_stopping_patience=50)
    return BaselineRequest(model="tiny-cnn", data=DataConfig(image_size=16), train=config, resume=resume)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = make_baseline(Workspace(tmp_path / "a"), _request(epochs=3))
    ws = Workspace(tmp_path / "b")
    make_baseline(ws, _request(epochs=1))  # "interrupted" after epoch 1: its state is on disk
    resumed = make_baseline(ws, _request(epochs=3, resume=True))
    assert resumed.outcome.resumed_after_epoch == 1 and resumed.outcome.epochs_trained == 3
    assert [h.train_loss for h in resumed.history] == [h.train_loss for h in straight.history]
    a = torch.load(tmp_path / "a" / "baseline" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(ws.model_path, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_config_or_a_missing_state(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(QBenchError, match="start without --resume"):
        make_baseline(ws, _request(epochs=1, resume=True))
    make_baseline(ws, _request(epochs=1))
    other = _request(epochs=2, resume=True)
    other.train.lr_head = 0.5
    with pytest.raises(QBenchError, match="lr_head"):
        make_baseline(ws, other)


@pytest.mark.slow
def test_two_process_torchrun_checkpoint_loads_and_evaluates_like_one_process(tmp_path, qbench_cli):
    one = qbench_cli("baseline", *TINY, "--epochs", "1", "--out", str(tmp_path / "one"))
    two = qbench_cli("baseline", *TINY, "--epochs", "1", "--nproc", "2", "--out", str(tmp_path / "two"))
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    (m1, meta1), (m2, meta2) = (
        load_checkpoint(tmp_path / w / "baseline" / "model.pt") for w in ("one", "two")
    )
    assert meta1.keys() == meta2.keys() and meta1["model"] == meta2["model"]
    assert {k: v.shape for k, v in m1.state_dict().items()} == {
        k: v.shape for k, v in m2.state_dict().items()
    }
    rec = TrainRecord.from_json(tmp_path / "two" / "baseline" / "train.json")
    assert rec.outcome.processes == 2 and rec.splits["test"].n_images == 270
    shown = qbench_cli("evaluate", "--out", str(tmp_path / "two"))
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "Training" in shown.stdout and "Validation" in shown.stdout and "Testing" in shown.stdout


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_final_epoch_count(tmp_path):
    ws = tmp_path / "ws"
    cmd = [sys.executable, "-m", "qbench", "baseline", *TINY, "--epochs", "12", "--patience", "100"]
    cmd += ["--save-every", "0"]  # the state after every epoch, so a kill at any epoch can resume
    proc = subprocess.Popen([*cmd, "--out", str(ws)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = ws / "baseline" / RESUME_STATE
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (ws / "baseline" / "train.json").exists(), "the run finished before it could be killed"
    done = subprocess.run([*cmd, "--out", str(ws), "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rec = TrainRecord.from_json(ws / "baseline" / "train.json")
    assert [h.epoch for h in rec.history] == list(range(1, 13))
    assert rec.outcome.resumed_after_epoch is not None and rec.outcome.epochs_trained == 12


def test_the_state_is_written_by_time_and_after_the_last_epoch(tmp_path, monkeypatch):
    """Writing model + optimizer state after every epoch costs seconds on AlexNet: by default it is
    written once the interval has passed, and always after the last epoch (so a run can be extended)."""
    from qbench.baselines import resume

    writes = []
    real_save = resume.save_state
    monkeypatch.setattr(
        resume, "save_state", lambda path, state: writes.append(state["epoch"]) or real_save(path, state)
    )
    make_baseline(Workspace(tmp_path / "a"), _request(epochs=3))  # default interval: 60 s, far longer
    assert writes == [3]


@pytest.mark.parametrize("argv", [["run", "--model", "tiny-cnn"], ["bench"], ["baseline", "--evaluate"]])
def test_commands_other_than_training_refuse_to_run_under_several_torchrun_processes(
    argv, monkeypatch, capsys
):
    from qbench.cli.main import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "torchrun started 2" in err and "without torchrun" in err and err.count("\n") == 1
