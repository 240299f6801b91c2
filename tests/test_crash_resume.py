"""Resuming through train.py: a run killed with SIGKILL resumes from its last checkpoint, nothing half-written
is left behind (a resumed run sweeps the temporaries a killed writer left), and a resumed soccer run keeps the
best models of the evaluations before the checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import train
import workflow.builders
from rlcore.checkpoint import load_checkpoint
from rlcore.cliutil import run_cli
from scoring.harness import EvalResult
from scoring.report import EpisodeRecord

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sigkill_mid_training_then_resume(tmp_path) -> None:
    save = tmp_path / "run"
    argv = ["--env-id", "Pendulum-v1", "--algo", "sac", "--normalize-obs", "--learning-starts", "200",
            "--checkpoint-freq", "300", "--save-replay", "--eval-episodes", "1", "--save-dir", str(save)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *argv, "--total-timesteps", "100000"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # wait for a checkpoint taken after updates began
            ckpt = save / "checkpoint.pt"
            if ckpt.exists() and load_checkpoint(ckpt)["runner"]["timesteps"] >= 900:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 120 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed = load_checkpoint(save / "checkpoint.pt")  # complete and readable whatever the moment of the kill
    steps = killed["runner"]["timesteps"]
    count = float(killed["algo_state"]["normalizer"]["count"])
    assert steps >= 900 and count > steps  # the normaliser saw every observation so far (plus resets)

    assert run_cli(train.main, [*argv, "--total-timesteps", str(steps + 300), "--resume-model",
                                str(save / "checkpoint.pt")]) == 0
    resumed = load_checkpoint(save / "checkpoint.pt")
    assert resumed["runner"]["timesteps"] == steps + 300
    assert float(resumed["algo_state"]["normalizer"]["count"]) > count  # statistics continued, not restarted
    # the replay buffer came back with the checkpoint (--save-replay): one update per step, straight away
    assert resumed["algo_state"]["n_updates"] == killed["algo_state"]["n_updates"] + 300
    assert not list(save.glob(".*.tmp"))
    records = [json.loads(line) for line in (save / "metrics.jsonl").read_text().splitlines()]
    assert max(r["timestep"] for r in records) == steps + 300


def test_resume_sweeps_the_temporaries_a_killed_writer_left(tmp_path, capsys) -> None:
    save = tmp_path / "run"
    argv = ["--env-id", "Pendulum-v1", "--algo", "td3", "--buffer-size", "1000", "--learning-starts", "50",
            "--eval-episodes", "1", "--save-dir", str(save)]
    assert run_cli(train.main, [*argv, "--total-timesteps", "100"]) == 0
    planted = [save / ".checkpoint.pt.k3j2x9.tmp", save / ".final_model.zip.8h1q0a.tmp"]  # atomic_write's names
    kept = [save / "notes.tmp", save / ".keep"]
    for path in (*planted, *kept):
        path.write_bytes(b"half a file")
    capsys.readouterr()
    assert run_cli(train.main, [*argv, "--total-timesteps", "200", "--resume-model", str(save / "checkpoint.pt")]) == 0
    assert not any(path.exists() for path in planted)
    assert all(path.read_bytes() == b"half a file" for path in kept)
    out = capsys.readouterr().out
    assert "removed .checkpoint.pt.k3j2x9.tmp, left by an interrupted write" in out
    assert load_checkpoint(save / "checkpoint.pt")["runner"]["timesteps"] == 200


def test_resumed_soccer_run_keeps_its_best_models(tmp_path, monkeypatch, capsys) -> None:
    """Scripted evaluation scores (0.5 * distance - 0.3 on kick_to_target): -0.1 at 120, 0.2 at 240, then, after
    the resume, -0.3 at 360. The best model stays the one of timestep 240."""
    scores = iter([0.4, 1.0, 0.0])

    def scripted_evaluation(policy, tasks, *args, **kwargs) -> EvalResult:
        terms = {"success": False, "offside": False, "distance": next(scores)}
        return EvalResult({"kick_to_target": [EpisodeRecord("kick_to_target", 0, terms, 100, False, True)]})

    monkeypatch.setattr(workflow.builders, "evaluate_soccer", scripted_evaluation)
    save = tmp_path / "ktt"
    argv = ["--algo", "td3", "--net-arch", "16,16", "--buffer-size", "1000", "--learning-starts", "100",
            "--eval-freq", "120", "--eval-episodes", "1", "--eval-seeds", "0", "--max-episode-steps", "100",
            "--tasks", "kick_to_target", "--n-envs", "1", "--save-dir", str(save)]
    assert run_cli(train.main, [*argv, "--total-timesteps", "240"]) == 0
    best = json.loads((save / "best_model_competition.meta.json").read_text())
    assert best["timesteps"] == 240 and best["evaluation"]["comp_eval/C_overall"] == pytest.approx(0.2)
    assert run_cli(train.main, [*argv, "--total-timesteps", "360", "--resume-model", str(save / "checkpoint.pt")]) == 0
    last = [json.loads(line) for line in (save / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["comp_eval/C_overall"] == pytest.approx(-0.3)
    assert last["eval_comp/best_comp_total_sum"] == pytest.approx(0.2)
    for name in ("best_model_competition", "best_model_ktt"):
        best = json.loads((save / f"{name}.meta.json").read_text())
        assert best["timesteps"] == 240, name
        assert best["evaluation"]["comp_eval/C_overall"] == pytest.approx(0.2), name
    tampered = torch.load(save / "checkpoint.pt", weights_only=True)
    tampered["runner"]["tracker"]["best"]["comp_eval/C_overall"] = float("nan")
    torch.save(tampered, save / "checkpoint.pt")
    capsys.readouterr()
    assert run_cli(train.main, [*argv, "--total-timesteps", "480", "--resume-model", str(save / "checkpoint.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume-model:") and "best-model state" in err and err.count("\n") == 1
