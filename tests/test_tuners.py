"""The CMA-ES loop the tuners share (skills/cmaes.py) in miniature: it improves its objective, writes the best
result and a state a second run resumes from; a state that does not fit is one error line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from skills import tune_walk
from skills.cmaes import search, tuner_run

NAMES = ("a", "b", "c")
TARGET = np.array([0.7, -0.4, 0.2])


def _no_setup() -> None:
    pass


def _bowl(z: np.ndarray) -> tuple[float, dict]:
    """A quadratic with its minimum at TARGET (module level: the worker processes import it)."""
    return float(np.sum((z - TARGET) ** 2)), {"z": z.tolist()}


def _run(tmp_path, generations: int, resume=None) -> float:
    return search(names=NAMES, evaluate=_bowl, generations=generations, popsize=6, sigma=0.3, seed=0, workers=1,
                  init_worker=_no_setup, init_args=(), out=tmp_path / "best.json", state_path=tmp_path / "state.json",
                  resume=resume, result_doc=lambda z, cost, rows, gen: {"cost": cost, "generation": gen},
                  extra={"start": {}})


def test_the_search_improves_its_objective_and_resumes(tmp_path, capsys):
    start = _bowl(np.zeros(3))[0]
    first = _run(tmp_path, 4)
    assert first < start
    assert json.loads((tmp_path / "best.json").read_text())["cost"] == pytest.approx(first)
    args = type("Args", (), {"out": str(tmp_path / "best.json"), "state": None,
                             "resume": str(tmp_path / "state.json")})()
    run = tuner_run(args, NAMES, "skills.fake", [])
    assert run.resumed.generation == 4
    second = _run(tmp_path, 4, resume=run.resumed)
    assert second <= first and json.loads((tmp_path / "state.json").read_text())["generation"] == 8
    assert "gen    8" in capsys.readouterr().out


def test_a_state_that_does_not_fit_is_one_error_line(tmp_path, capsys):
    _run(tmp_path, 1)
    assert tune_walk.cli(tune_walk.main, ["--resume", str(tmp_path / "state.json"), "--out",
                                          str(tmp_path / "walk.json")]) == 2  # another tuner's parameters
    assert capsys.readouterr().err.count("\n") == 1
    state = json.loads((tmp_path / "state.json").read_text())
    dim = len(tune_walk.TUNED)
    state.update(mean=[0.0] * dim, best=[0.0] * dim, covariance=np.eye(dim).tolist(),
                 extra={"names": list(tune_walk.TUNED), "start": {"no_such_parameter": 1.0}})
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert tune_walk.cli(tune_walk.main, ["--resume", str(tmp_path / "state.json"), "--out",
                                          str(tmp_path / "walk.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --resume:") and "start parameters" in err and err.count("\n") == 1


@pytest.mark.slow
def test_the_walk_tuner_in_miniature_improves_on_a_poor_start(tmp_path, capsys):
    """The real tuner end to end (fast simulator, worker process, its objective), in miniature: a population of
    4 for 3 generations of 3 s episodes (its speed measurement needs the 2 s after the start; the full tuner
    walks 10 s) from the shipped walk with too short a step, which tracks forward commands badly."""
    import dataclasses

    from envs.walk import load_walk_params

    shipped, _ = load_walk_params(None)
    poor = dataclasses.replace(shipped, step_gain=0.4 * shipped.step_gain)
    start = tmp_path / "poor.json"
    start.write_text(json.dumps({"params": dataclasses.asdict(poor)}))
    tune_walk._init_worker("goalie_penalty_kick", 3.0, dataclasses.asdict(poor))
    start_cost, _ = tune_walk.evaluate(np.zeros(len(tune_walk.TUNED)))
    argv = ["--start", str(start), "--popsize", "4", "--generations", "3", "--seconds", "3", "--workers", "1",
            "--sigma", "0.3", "--out", str(tmp_path / "walk.json")]
    assert tune_walk.cli(tune_walk.main, argv) == 0, capsys.readouterr().err
    best = json.loads((tmp_path / "walk.json").read_text())
    assert best["objective"] < start_cost, (best["objective"], start_cost)
    assert best["params"]["step_gain"] != poor.step_gain
