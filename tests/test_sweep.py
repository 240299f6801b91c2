"""Sweeps on Ray Tune (sweep/): the spec's bad input, a random sweep on Pendulum-v1 whose best run.yaml
reproduces its score, the scheduler stopping trials, a failing trial, Ctrl-C and --resume, and the walk tuner's
populations on Ray actors. Ray runs locally on this machine's CPUs."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlcore.cliutil import run_cli
from sweep.__main__ import main as sweep_main
from sweep.spec import read_spec

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parent.parent
PENDULUM = {"env_id": "Pendulum-v1", "algo": "sac", "total_timesteps": 400, "learning_starts": 100,
            "eval_freq": 200, "eval_episodes": 1, "device": "cpu", "log_interval": 200}


def _spec_file(tmp_path, name: str = "sweep.yaml", **document) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("document, message", [
    ({"base": {"no_such_option": 1}, "space": {"lr": {"grid": [1e-3]}}}, "unknown option 'no_such_option'"),
    ({"base": PENDULUM, "space": {}}, "the search space is empty"),
    ({"base": PENDULUM}, "the search space is empty"),
    ({"base": PENDULUM, "space": {"lr": {"grid": [1e-3]}}, "scheduler": "hyperband"}, "unknown scheduler 'hyperband'"),
    ({"base": PENDULUM, "space": {"lr": {"grid": [1e-3]}}, "metric": "comp_eval/C_overall"},
     "unknown metric 'comp_eval/C_overall' for env_id"),
    ({"base": PENDULUM, "space": {"lr": {"gaussian": [1, 2]}}}, "unknown distribution 'gaussian'"),
    ({"base": PENDULUM, "space": {"lr": {"loguniform": [0, 1]}}}, "loguniform needs low > 0"),
    ({"base": PENDULUM, "space": {"lr": {"grid": [1e-3]}}, "searcher": "x"}, "unknown key 'searcher'"),
    ({"base": PENDULUM, "space": {"tau": {"grid": [0.5]}}, "search": "optuna"}, "use choice instead of grid"),
    ({"base": {**PENDULUM, "algo": "ppo"}, "space": {"tau": {"grid": [0.01]}}}, "--tau applies to TD3 and SAC"),
    ({"base": PENDULUM, "space": {"save_dir": {"grid": ["a"]}}}, "save_dir is set by the sweep"),
    ({"base": PENDULUM, "space": {"lr": {"grid": [1e-3]}}, "resources": {"cpu": 4096}},
     "resources.cpu 4096 per trial: this machine has"),
])
def test_bad_sweep_files_are_one_error_line(tmp_path, capsys, document, message) -> None:
    assert run_cli(sweep_main, ["--config", str(_spec_file(tmp_path, **document)), "--dir", str(tmp_path / "s")]) == 2
    assert message in _one_error_line(capsys)


def test_an_address_that_cannot_be_reached_is_one_error_line(tmp_path, capsys) -> None:
    spec = _spec_file(tmp_path, base=PENDULUM, space={"lr": {"grid": [1e-3]}})
    started = time.perf_counter()
    assert run_cli(sweep_main, ["--config", str(spec), "--address", "127.0.0.1:1", "--dir", str(tmp_path)]) == 2
    assert "--address 127.0.0.1:1: cannot reach it" in _one_error_line(capsys)
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_a_random_sweep_writes_its_results_and_the_best_run_reproduces(tmp_path, capsys) -> None:
    spec = _spec_file(tmp_path, base=PENDULUM, space={"lr": {"loguniform": [1e-4, 3e-3]},
                                                      "tau": {"choice": [0.005, 0.02]}},
                      trials=4, concurrency=2, seed=3)
    sweep_dir = tmp_path / "sweep"
    assert run_cli(sweep_main, ["--config", str(spec), "--dir", str(sweep_dir)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "best eval/mean_reward" in out
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert len(rows) == 4 and {r["status"] for r in rows} == {"finished"}
    assert all((Path(r["save_dir"]) / "final_model.zip").is_file() for r in rows)
    document = json.loads((sweep_dir / "results.json").read_text())
    assert document["metric"] == "eval/mean_reward" and len(document["trials"]) == 4
    assert (sweep_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    best = rows[0]
    best_run = yaml.safe_load((sweep_dir / "best_run.yaml").read_text())
    assert best_run["lr"] == pytest.approx(float(best["lr"])) and best_run["threads"] == 1
    import train

    assert run_cli(train.main, ["--config", str(sweep_dir / "best_run.yaml")]) == 0
    rerun = [json.loads(line) for line in (sweep_dir / "best_run" / "metrics.jsonl").open()]
    scores = {r["timestep"]: r["eval/mean_reward"] for r in rerun if "eval/mean_reward" in r}
    assert scores[int(best["best_timestep"])] == pytest.approx(float(best["best_score"]), abs=1e-9)


def _standin_sweep(tmp_path, monkeypatch, **document):
    """A sweep of the stand-in trainer (tests/sweep_standin.py) on a local Ray; its result rows."""
    from sweep.results import trial_rows
    from sweep.runner import run_sweep, start_ray

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    spec = read_spec(_spec_file(tmp_path, base={**PENDULUM}, **document))
    start_ray(None, spec)
    try:
        grid, interrupted = run_sweep(spec, tmp_path / "sweep", train_fn="sweep_standin:train")
        return trial_rows(grid, spec, tmp_path / "sweep", interrupted=interrupted)
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_the_scheduler_stops_the_trials_it_should(tmp_path, monkeypatch) -> None:
    rows = _standin_sweep(tmp_path, monkeypatch, space={"lr": {"grid": [4.0, 3.0, 2.0, 1.0]}}, search="grid",
                          scheduler="asha", grace_period=100, reduction_factor=2, concurrency=1)
    by_lr = {r.config["lr"]: r for r in rows}
    assert by_lr[4.0].status == "finished" and by_lr[4.0].last_timestep == 400
    # each later trial scores below the first at the first rung (ASHA's cutoff): stopped there
    assert all(by_lr[lr].status == "stopped early" and by_lr[lr].last_timestep == 100 for lr in (3.0, 2.0, 1.0))


@pytest.mark.slow
def test_a_failing_trial_is_reported_and_the_sweep_goes_on(tmp_path, monkeypatch) -> None:
    rows = _standin_sweep(tmp_path, monkeypatch, space={"lr": {"grid": [1.0, 13.0, 2.0]}}, search="grid")
    by_lr = {r.config["lr"]: r for r in rows}
    assert by_lr[13.0].status == "failed" and "a constructed failure" in by_lr[13.0].error
    assert by_lr[1.0].status == by_lr[2.0].status == "finished"
    assert [r.config["lr"] for r in rows] == [2.0, 1.0, 13.0]  # best first, the failed one last


@pytest.mark.slow
def test_ctrl_c_keeps_finished_trials_and_resume_finishes_the_sweep(tmp_path) -> None:
    spec = _spec_file(tmp_path, base={**PENDULUM, "total_timesteps": 600}, space={"lr": {"grid": [1e-3, 2e-3, 3e-3]}},
                      search="grid", concurrency=1)
    sweep_dir = tmp_path / "sweep"
    argv = [sys.executable, "-m", "sweep", "--config", str(spec), "--dir", str(sweep_dir)]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # interrupt once the first trial has ended
        lines.append(line)
        if ": ended" in line:
            proc.send_signal(signal.SIGINT)
            break
    output = "".join(lines) + proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, output
    assert "continue with python -m sweep" in output
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    finished = [r for r in rows if r["status"] == "finished"]
    assert len(finished) >= 1 and {r["status"] for r in rows} <= {"finished", "not finished"}
    kept = {r["trial"]: (Path(r["save_dir"]) / "final_model.zip").read_bytes() for r in finished}
    done = subprocess.run([*argv, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}
    for trial, data in kept.items():  # the trials finished before Ctrl-C were not run again
        assert (sweep_dir / "trials" / trial / "final_model.zip").read_bytes() == data


@pytest.mark.slow
def test_the_walk_tuner_evaluates_its_population_on_ray(tmp_path, capsys) -> None:
    from skills import tune_walk

    argv = ["--ray", "--workers", "1", "--popsize", "4", "--generations", "1", "--seconds", "3",
            "--out", str(tmp_path / "walk.json")]
    assert tune_walk.cli(tune_walk.main, argv) == 0, capsys.readouterr().err
    assert "gen    1" in capsys.readouterr().out
    assert math.isfinite(json.loads((tmp_path / "walk.json").read_text())["objective"])


@pytest.mark.slow
def test_an_optuna_search_with_median_stopping_runs_its_trials(tmp_path, monkeypatch) -> None:
    rows = _standin_sweep(tmp_path, monkeypatch, space={"lr": {"uniform": [1.0, 4.0]}}, search="optuna",
                          scheduler="median", grace_period=100, trials=3, seed=1)
    assert len(rows) == 3 and all(1.0 <= r.config["lr"] <= 4.0 for r in rows)
    assert {r.status for r in rows} <= {"finished", "stopped early"} and rows[0].status == "finished"
    assert rows[0].best_score == pytest.approx(max(r.config["lr"] for r in rows))
