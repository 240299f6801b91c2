"""The training loop: truncation handling, timestep schedules, resume, logging; train.py errors."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import train
from rlcore.algos import build_algorithm
from rlcore.checkpoint import load_checkpoint
from rlcore.cliutil import run_cli
from rlcore.config import BufferConfig, NetConfig, PPOConfig, TD3Config
from rlcore.logger import RunLogger
from rlcore.runner import RunConfig, Runner, _true_next_obs, check_box_spaces

SMALL = NetConfig(net_arch=(8,))


class _Counter(gym.Env):
    """obs = [t, 1]; reward 1; terminates when the action's first entry is above 0.99; TimeLimit adds truncation."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, 1.0], np.float32), 1.0, bool(action[0] > 0.99), False, {}


def _counter_vec(n: int, limit: int = 3) -> gym.vector.VectorEnv:
    fns = [lambda: gym.wrappers.TimeLimit(_Counter(), limit) for _ in range(n)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def test_true_next_obs_replaces_only_ended_rows() -> None:
    next_obs = np.array([[0.0], [5.0]], np.float32)
    infos = {"final_obs": np.array([np.array([9.0]), None], dtype=object), "_final_obs": np.array([True, False])}
    np.testing.assert_array_equal(_true_next_obs(next_obs, infos), [[9.0], [5.0]])
    assert _true_next_obs(next_obs, {}) is next_obs


def test_truncation_keeps_final_obs_and_is_not_termination() -> None:
    env = _counter_vec(2, limit=3)
    algo = build_algorithm("td3", 2, np.array([-1.0], np.float32), np.array([1.0], np.float32),
                           TD3Config(net=SMALL, buffer=BufferConfig(buffer_size=100, batch_size=4,
                                                                    learning_starts=1000)))
    runner = Runner(algo, env, RunConfig(total_timesteps=12, log_interval=100))
    torch.manual_seed(0)
    runner.train()
    replay = runner.replay
    rows = slice(0, replay.size)
    obs_t, next_t = replay.obs[rows, 0], replay.next_obs[rows, 0]
    truncated_rows = next_t == 3.0  # the TimeLimit step: true final obs t=3, not the reset obs t=0
    assert truncated_rows.any()
    assert torch.all(obs_t[truncated_rows] == 2.0)
    assert torch.all(replay.terminated[rows][truncated_rows] == 0.0)
    assert not torch.any((next_t == 0.0) & (obs_t == 2.0))  # no reset obs stored as a next obs
    env.close()


def test_schedules_count_timesteps_and_final_eval_always_runs(tmp_path) -> None:
    env = _counter_vec(4, limit=5)
    algo = build_algorithm("td3", 2, np.array([-1.0], np.float32), np.array([1.0], np.float32),
                           TD3Config(net=SMALL, buffer=BufferConfig(buffer_size=200, batch_size=8, learning_starts=20)))
    seen: list[int] = []

    def evaluate(policy, timestep: int) -> dict[str, float]:
        seen.append(timestep)
        return {"eval/mean_reward": float(timestep)}

    runner = Runner(algo, env, RunConfig(total_timesteps=100, eval_freq=30, log_interval=40), save_dir=tmp_path,
                    evaluate=evaluate, logger=RunLogger(tmp_path, verbose=False))
    final = runner.train()
    assert seen == [32, 60, 92, 100]  # 4 envs: first vector step at or past each multiple of 30, then the end
    assert final == {"eval/mean_reward": 100.0}
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*records)
    for key in ("time/fps", "rollout/ep_rew_mean", "rollout/ep_len_mean", "train/critic_loss", "train/actor_loss",
                "eval/mean_reward"):
        assert key in keys
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
    assert load_checkpoint(tmp_path / "checkpoint.pt")["runner"]["timesteps"] == 100
    env.close()


def test_resume_continues_counters_and_skips_random_warmup(tmp_path) -> None:
    cfg = TD3Config(net=SMALL, buffer=BufferConfig(buffer_size=500, batch_size=8, learning_starts=60))
    low, high = np.array([-1.0], np.float32), np.array([1.0], np.float32)
    env = _counter_vec(2, limit=5)
    Runner(build_algorithm("td3", 2, low, high, cfg), env, RunConfig(total_timesteps=80), save_dir=tmp_path).train()
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    algo = build_algorithm("td3", 2, low, high, cfg)
    algo.load_state_dict(payload["algo_state"])
    calls = []
    explore = algo.explore
    algo.explore = lambda obs: calls.append(1) or explore(obs)
    runner = Runner(algo, env, RunConfig(total_timesteps=100), save_dir=tmp_path, resume=payload)
    assert runner.timesteps == 80
    runner.train()
    assert runner.timesteps == 100 and len(calls) == 10  # every step acted with the policy
    assert algo.n_updates > payload["algo_state"]["n_updates"]
    env.close()


def test_ppo_runner_collects_full_rollouts(tmp_path) -> None:
    env = _counter_vec(2, limit=4)
    algo = build_algorithm("ppo", 2, np.array([-1.0], np.float32), np.array([1.0], np.float32),
                           PPOConfig(net=SMALL, n_steps=8, batch_size=8, n_epochs=2))
    runner = Runner(algo, env, RunConfig(total_timesteps=40, log_interval=16), save_dir=tmp_path,
                    logger=RunLogger(tmp_path, verbose=False))
    runner.train()
    assert runner.timesteps == 48  # whole rollouts of 8 steps x 2 envs
    assert algo.n_updates == 3 * 2
    keys = set().union(*(json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()))
    assert {"train/approx_kl", "train/clip_fraction", "train/explained_variance"} <= keys
    env.close()


def test_check_box_spaces_rejects_discrete() -> None:
    env = gym.make_vec("CartPole-v1", 1, vectorization_mode="sync")
    with pytest.raises(ValueError, match="Box observation and action spaces"):
        check_box_spaces(env)
    env.close()


@pytest.mark.parametrize("argv, message", [
    (["--algo", "a2c"], "invalid choice"),
    (["--net-arch", "64,x"], "--net-arch must be"),
    (["--lr", "-0.1"], "learning_rate must be > 0"),
    (["--buffer-size", "100", "--batch-size", "256"], "buffer_size (100) must be >= batch_size (256)"),
    (["--env-id", "CartPole-v1"], "Box observation and action spaces"),
    (["--env-id", "NoSuchEnv-v0"], "unknown gymnasium env id"),
    (["--ent-coef", "0.1", "--ent-coef-auto", "--algo", "sac"], "mutually exclusive"),
    (["--ent-coef", "0.1", "--algo", "td3"], "not TD3"),
    (["--resume-model", "missing.pt"], "checkpoint not found"),
])
def test_train_bad_input_is_one_line_exit_2(argv, message, tmp_path, capsys) -> None:
    if "--env-id" not in argv:
        argv = ["--env-id", "Pendulum-v1", *argv]
    code = run_cli(train.main, [*argv, "--save-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_train_resume_rejects_other_algo_and_other_obs_shape(tmp_path, capsys) -> None:
    save = tmp_path / "p"
    assert run_cli(train.main, ["--env-id", "Pendulum-v1", "--algo", "td3", "--total-timesteps", "200",
                                "--eval-episodes", "1", "--save-dir", str(save)]) == 0
    ckpt = str(save / "checkpoint.pt")
    capsys.readouterr()
    assert run_cli(train.main, ["--env-id", "Pendulum-v1", "--algo", "sac", "--resume-model", ckpt]) == 2
    assert "holds a td3 checkpoint" in capsys.readouterr().err
    assert run_cli(train.main, ["--env-id", "MountainCarContinuous-v0", "--algo", "td3", "--resume-model", ckpt]) == 2
    assert "shape (3,)" in capsys.readouterr().err


def test_logger_keeps_new_records_apart_from_an_unfinished_line(tmp_path) -> None:
    from rlcore.logger import RunLogger

    (tmp_path / "metrics.jsonl").write_text('{"timestep": 1, "a": 1.0}\n{"timestep": 2, "a"')  # killed mid-line
    logger = RunLogger(tmp_path, tensorboard=False, verbose=False)
    logger.record({"a": 3.0}, 3)
    logger.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert lines[1] == '{"timestep": 2, "a"' and json.loads(lines[2])["a"] == 3.0


def test_headline_keeps_top_level_scores_in_order() -> None:
    from rlcore.metrics import headline

    scores = {"comp_eval/C_overall": 1.0, "comp_eval/ktt/term_mean/success": 0.5, "eval/mean_reward": 2.0,
              "eval_comp/ktt/comp_total": 3.0, "plain": 4.0}
    assert list(headline(scores)) == ["comp_eval/C_overall", "eval/mean_reward", "plain"]
