"""The scripted striker (skills/striker.py): it stays up, its core scripts, and its submission scores on the
platform's loop what evaluate.py scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bc.record
import bc.train
import evaluate
from bc.dataset import load_demos
from rlcore.cliutil import run_cli
from rlcore.seeds import episode_seed
from scoring.harness import evaluate as harness_evaluate
from scoring.report import episode_report
from skills.striker import StrikerConfig, StrikerCore, StrikerPolicy, striker_config, striker_settings
from submission import load_like_platform
from submission.torchscript import write_striker_submission
from tests.platform_client import run_benchmark


@pytest.mark.parametrize("kick", [True, False], ids=["kick", "walk-through"])
def test_striker_stays_up_in_a_short_episode(kick):
    result = harness_evaluate(StrikerPolicy(striker_config(kick)), ["goalie_penalty_kick"], 1, [0], sim="fast",
                              max_episode_steps=2000, **striker_settings(kick=kick))
    record = result.records["goalie_penalty_kick"][0]
    assert record.truncated and not record.terms["robot_fallen"] and record.length == 2000


def test_the_core_scripts_and_keeps_per_episode_state():
    core = torch.jit.script(StrikerCore(StrikerConfig(goalie_delay=0.0)))
    obs = torch.zeros(2, 89)
    obs[:, 48] = -2.0  # the ball 2 m along -x: the initial heading is pi
    obs[:, 36] = -4.2  # the goal further along -x
    obs[:, 86] = 1.0  # goalie
    command, state = core(obs, torch.zeros(2, 6))
    assert command.shape == (2, 3) and torch.all(command.abs() <= 1.0)
    assert state[0, 0] == pytest.approx(np.pi) and state[0, 2] == 1.0
    assert command[0, 0] > 0  # walks towards the ball
    waiting = torch.jit.script(StrikerCore(StrikerConfig(goalie_delay=0.25)))
    command, state = waiting(obs, torch.zeros(2, 6))
    assert torch.all(command == 0) and state[0, 5] == 0.0  # the goalie delay: stands first
    for _ in range(125):
        command, state = waiting(obs, state)
    assert command[0, 0] > 0 and state[0, 5] == pytest.approx(0.25)


def test_kick_to_target_rows_shoot_faster_and_dribble_on():
    """Hand-computed: a Goalie row and a KickToTarget row, each 0.3 m behind the ball on its aim line, facing it,
    mid-shot: vx = shot speed / the 0.6 m/s limit (0.45 -> 0.75; KickToTarget's 0.5 -> 0.8333); a finished shot
    (mode DONE) stays done in the penalty kicks and starts the next approach in KickToTarget."""
    from envs.preprocess import OBS_SLICES

    config = StrikerConfig(goalie_delay=0.0)
    core = torch.jit.script(StrikerCore(config))
    obs = torch.zeros(2, 89)
    ball, goal, target = (OBS_SLICES[k].start for k in ("ball_xpos_rel_robot", "goal_team_0_rel_robot",
                                                         "target_xpos_rel_robot"))
    obs[:, ball] = 0.3
    obs[0, goal], obs[1, target] = 4.0, 4.0
    obs[0, 86], obs[1, 88] = 1.0, 1.0  # goalie, kick_to_target
    shooting = torch.tensor([[0.0, 1.0, 1.0, 0.3, 0.0, 1.0]] * 2, dtype=torch.float64)  # heading 0, SHOOT, started
    command, state = core(obs, shooting)
    assert command[:, 0].tolist() == pytest.approx([0.45 / 0.6, 0.5 / 0.6])
    assert command[:, 1:].abs().max() == 0.0 and state[:, 1].tolist() == [1.0, 1.0]
    done = shooting.clone()
    done[:, 1] = 2.0
    _, state = core(obs, done)
    assert state[:, 1].tolist() == [2.0, 0.0]


def test_evaluate_runs_the_striker(capsys):
    argv = ["--policy", "striker", "--tasks", "goalie_penalty_kick", "--episodes", "1", "--eval-seeds", "0",
            "--max-episode-steps", "300", "--sim", "fast"]
    assert run_cli(evaluate.main, argv) == 0
    assert "goalie_penalty_kick" in capsys.readouterr().out


def test_bad_walk_params_for_the_striker_are_one_line(tmp_path, capsys):
    bad = tmp_path / "walk.json"
    bad.write_text('{"params": {"lift": 0.03}}')
    assert run_cli(evaluate.main, ["--policy", "striker", "--walk-params", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --walk-params:") and err.count("\n") == 1
    assert run_cli(evaluate.main, ["--policy", "stand", "--walk-params", str(bad)]) == 2


def test_a_bc_actor_of_striker_demos_knows_its_controller_and_repeat(tmp_path, capsys):
    """bc.record -> bc.train hands the command options and the action repeat on, so evaluate.py plays the BC actor
    over the walk engine at the recorded repeat; a command-mode BC actor without them is one error line."""
    demos, actor = tmp_path / "demos.npz", tmp_path / "bc.pt"
    assert run_cli(bc.record.main, ["--policy", "striker", "--action-mode", "command", "--action-repeat", "5",
                                    "--tasks", "goalie_penalty_kick", "--seeds", "0", "--max-episode-steps", "100",
                                    "--out", str(demos)]) == 0
    recorded = load_demos(demos)
    assert recorded.action_repeat == 5 and recorded.command["controller"] == "walk"
    assert len(recorded) == 20  # 100 physics steps at 5 per decision
    assert run_cli(bc.train.main, ["--dataset", str(demos), "--epochs", "1", "--out", str(actor)]) == 0
    payload = torch.load(actor, weights_only=True)
    assert payload["action_repeat"] == 5 and payload["command"] == recorded.command
    capsys.readouterr()
    argv = ["--model", str(actor), "--tasks", "goalie_penalty_kick", "--episodes", "1", "--eval-seeds", "0",
            "--max-episode-steps", "100", "--sim", "fast"]
    assert run_cli(evaluate.main, argv) == 0
    assert "length 100 " in capsys.readouterr().err
    settings = evaluate.load_model(str(actor), "cpu").settings
    assert settings["action_repeat"] == 5 and settings["command"].walk
    payload["command"] = None
    torch.save(payload, actor)
    assert run_cli(evaluate.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model:") and "over which controller" in err and err.count("\n") == 1


@pytest.mark.slow
def test_striker_submission_scores_on_the_platform_loop_what_evaluate_scores(tmp_path):
    """model.pt (TorchScript) + preprocessor.py loaded as the platform loads them (imports stripped, only np and
    env in scope), batched observations, finished envs stepped on: per-episode official scores equal to the
    harness's on the official env, episode by episode."""
    write_striker_submission(tmp_path)
    model = torch.jit.load(str(tmp_path / "model.pt"))
    pre = load_like_platform((tmp_path / "preprocessor.py").read_text())
    task, steps = "goalie_penalty_kick", 2500
    ours = harness_evaluate(StrikerPolicy(striker_config()), [task], 2, [0], max_episode_steps=steps,
                            **striker_settings()).records[task]
    seeds = [episode_seed(0, 0, e) for e in range(2)]
    assert [r.seed for r in ours] == seeds
    import gymnasium as gym

    space = gym.make("LowerT1GoaliePenaltyKick-v0").action_space
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)

    def get_actions(obs, info):
        with torch.inference_mode():
            unit = model(torch.as_tensor(pre.modify_state(obs, info))).numpy().astype(np.float64)
        return (low + (unit + 1.0) / 2.0 * (high - low)).astype(np.float32)  # the PyTorch handler's mapping

    platform = run_benchmark(task, seeds, get_actions, steps)
    # The module equals the env's striker torque for torque on the same observations (test_walk.py); the
    # platform's float32 [-1, 1] round trip moves each torque by ~1e-6, and a walk is chaotic: over 2500 steps
    # the two runs drift apart by centimetres, so the scores agree to this tolerance, not to the last digit.
    np.testing.assert_allclose(platform, [episode_report(r.terms, task)["comp_total"] for r in ours], atol=0.05)
