"""A run killed with SIGKILL resumes from its last checkpoint; nothing half-written is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train
from rlcore.checkpoint import load_checkpoint
from rlcore.cliutil import run_cli

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
