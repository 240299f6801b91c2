"""The command mode's macro bonus (--macro-reward-*): gate, cap, info keys, and train.py's flag rules."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import train
from envs.command import CommandOptions, MacroBonus, MacroReward
from envs.factory import make_env
from envs.tasks import get_task
from rlcore.cliutil import run_cli
from tests.controller_files import write_controller
from tests.mocap_files import clip_arrays, write_clip

KTT = get_task("kick_to_target")


class _Scripted(gym.Env):
    """Replays a list of step infos (reward 1.0 each); the episode ends after the last one."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, infos: list[dict]) -> None:
        self.infos, self.t = infos, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        info = dict(self.infos[self.t])
        self.t += 1
        return np.zeros(1, np.float32), 1.0, self.t == len(self.infos), False, info


def _info(triggered: bool, ball: tuple[float, float], target: tuple[float, float] = (4.0, 0.0)) -> dict:
    return {"macro_triggered": triggered, "ball_xpos_rel_robot": np.array([*ball, -0.7]),
            "target_xpos_rel_robot": np.array([*target, -0.7])}


def test_bonus_only_for_a_fired_macro_near_an_aligned_ball_and_capped() -> None:
    infos = [_info(False, (0.3, 0.0)),            # no trigger: nothing
             _info(True, (0.3, 0.0)),             # near (0.3 m) and aligned (cos 1): +0.2
             _info(True, (0.3, 0.4)),             # 0.5 m away, cos 0.6 >= 0.6: +0.2
             _info(True, (0.0, 0.3)),             # perpendicular (cos 0): nothing
             _info(True, (0.7, 0.0)),             # 0.7 m > radius 0.6: nothing
             _info(True, (0.2, 0.0)),             # third hit: only 0.1 left of the 0.5 cap
             _info(True, (0.2, 0.0))]             # cap reached
    env = MacroBonus(_Scripted(infos), KTT, MacroReward(bonus=0.2, radius=0.6, alignment=0.6, cap=0.5))
    env.reset()
    bonuses, rewards = [], []
    for _ in infos:
        _, reward, terminated, _, info = env.step(np.zeros(1))
        bonuses.append(info["macro_reward_bonus"])
        rewards.append(reward)
    assert bonuses == pytest.approx([0.0, 0.2, 0.2, 0.0, 0.0, 0.1, 0.0])
    assert rewards == pytest.approx([1.0 + b for b in bonuses])
    assert terminated and info["macro_reward_bonus_total"] == pytest.approx(0.5)
    env.reset()  # a new episode starts with the whole cap again
    _, _, _, _, info = env.step(np.zeros(1))
    _, reward, _, _, info = env.step(np.zeros(1))
    assert info["macro_reward_bonus"] == pytest.approx(0.2)


def test_macro_reward_options_are_checked() -> None:
    for bad in ({"bonus": 0.0}, {"bonus": 0.1, "cap": -1.0}, {"bonus": 0.1, "alignment": 1.5}):
        with pytest.raises(ValueError):
            MacroReward(**bad)
    with pytest.raises(ValueError, match="needs a macro"):
        CommandOptions(macro_reward=MacroReward(bonus=0.1))
    options = CommandOptions(macro="goal_kick", macro_reward=MacroReward(bonus=0.1, cap=0.3))
    assert CommandOptions.from_dict(dataclasses.asdict(options)) == options


def test_train_flag_rules(tmp_path, capsys) -> None:
    cases = [
        (["--macro-reward-bonus", "0.1"], "applies to --action-mode command only"),
        (["--action-mode", "command", "--macro", "goal_kick", "--macro-reward-bonus", "0.1"],
         "--allow-macro-bonus-with-competition"),
        (["--action-mode", "command", "--macro", "goal_kick", "--macro-reward-cap", "0.2"],
         "needs --macro-reward-bonus"),
        (["--action-mode", "command", "--reward-profile", "tight", "--macro-reward-bonus", "0.1"], "needs a macro"),
    ]
    for argv, message in cases:
        assert run_cli(train.main, [*argv, "--save-dir", str(tmp_path / "x")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x").exists()


def test_make_env_puts_the_bonus_outside_the_reward_profile(tmp_path) -> None:
    options = CommandOptions(controller=str(write_controller(tmp_path)),
                             macro=str(write_clip(tmp_path / "kick.npz", **clip_arrays())),
                             macro_reward=MacroReward(bonus=0.1))
    with pytest.warns(UserWarning, match="misaligned"):  # tight builds on the env reward: make_env says so
        env = make_env("kick_to_target", action_mode="command", reward_profile="tight", command=options,
                       max_episode_steps=20)()
    assert isinstance(env, MacroBonus) and env.reward == options.macro_reward
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(3, np.float32))
    assert info["macro_reward_bonus"] == 0.0  # a zero command never fires the sentinel
    env.close()
