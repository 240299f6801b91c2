"""make_env / make_vec_env on the real sai_mujoco envs: spaces, metadata, the competition reward, vector envs,
the wrapper chain of each configuration."""

import itertools
import warnings

import gymnasium as gym
import numpy as np
import pytest

from bc.stand import StandController
from envs.command import CommandOptions, MacroReward
from envs.factory import WRAPPER_CHAIN, ChainSettings, make_env, make_vec_env
from envs.tasks import get_task, score_weights
from envs.wrappers import T1_TORQUE_LIMIT, CompetitionReward, PDAction, TorqueAction
from tests.controller_files import write_controller
from tests.mocap_files import clip_arrays, write_clip

ZERO = np.zeros(12, np.float32)


def _run(env, policy, seed):
    """One episode; returns (sum of rewards, terminal info, steps, terminated)."""
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += reward
        steps += 1
        if terminated or truncated:
            return total, info, steps, terminated


def _official(task, terms):
    """The official episode score from terminal terms, written out (steps counts 1.0)."""
    weights = score_weights(task)
    return sum(weights[k] * float(terms[k]) for k in terms if k in weights) + weights["steps"]


def test_spaces_info_and_metadata():
    env = make_env("goalie_penalty_kick", seed=1)()
    assert env.action_space == gym.spaces.Box(-1, 1, (12,), np.float32)
    assert env.observation_space.shape == (89,)
    np.testing.assert_array_equal(env.metadata["torque_high"], T1_TORQUE_LIMIT)
    np.testing.assert_array_equal(env.metadata["torque_low"], -T1_TORQUE_LIMIT)
    np.testing.assert_array_equal(env.unwrapped.action_space.high, T1_TORQUE_LIMIT)
    assert (env.metadata["action_mode"], env.metadata["reward_profile"]) == ("torque", "competition")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (89,)
    obs, _, _, _, info = env.step(ZERO)
    assert set(info["reward_terms"]) >= {"robot_fallen", "ball_vel_twd_goal"}
    np.testing.assert_array_equal(info["task_index"], [1, 0, 0])
    assert info["task_name"] == "goalie_penalty_kick"
    env.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "goalie"}, "unknown task"),
        ({"action_mode": "joystick"}, "unknown action_mode"),
        ({"reward_profile": "base"}, "unknown reward_profile"),
        ({"action_repeat": 0}, "action_repeat"),
        ({"action_repeat": 2.0}, "action_repeat"),
        ({"pd_scale": 0.0}, "pd_scale"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
    ],
)
def test_bad_arguments_fail_before_building(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_env(**{"task": "kick_to_target", **kwargs})


def test_env_reward_profiles_warn_and_shaping_leaves_the_class_weights_alone():
    with pytest.warns(UserWarning, match="misaligned"):
        make_env("kick_to_target", reward_profile="env")
    with pytest.warns(UserWarning, match="misaligned"):
        env = make_env("goalie_penalty_kick", reward_profile="tight")()
    assert env.unwrapped.reward_config["goal_scored"] == 30.0
    assert type(env.unwrapped).reward_config["goal_scored"] == 25.0
    env.close()


def test_competition_return_telescopes_to_the_official_score():
    """Sum of rewards == terminal official score - steps weight - Phi(s0), for a fall and a truncation."""
    cases = [("kick_to_target", lambda obs: ZERO, 400), ("goalie_penalty_kick", StandController(), 300)]
    for task, policy, limit in cases:
        env = make_env(task, max_episode_steps=limit)()
        env.reset(seed=4)
        weights = score_weights(task)
        phi0 = _official(task, env.unwrapped.compute_reward()) - weights["steps"]  # the same state as below
        total, info, steps, terminated = _run(env, policy, seed=4)
        assert terminated == (task == "kick_to_target") and steps <= limit
        assert total == pytest.approx(_official(task, info["reward_terms"]) - weights["steps"] - phi0, abs=1e-9)
        env.close()


def test_competition_pays_standing_more_than_falling():
    """Zero torque falls at step ~278; the stand controller reaches the 400-step limit."""
    env = make_env("goalie_penalty_kick", max_episode_steps=400)()
    fall, _, fall_steps, fell = _run(env, lambda obs: ZERO, seed=0)
    stand, _, stand_steps, stand_terminated = _run(env, StandController(), seed=0)
    assert fell and fall_steps < 300 and not stand_terminated and stand_steps == 400
    assert fall < stand - 1.0  # robot_fallen costs 1.5
    env.close()


def test_pd_mode_and_wrapper_chain():
    env = make_env("kick_to_target", action_mode="pd", action_repeat=2, pd_scale=0.5)()
    chain = []
    layer = env
    while isinstance(layer, gym.Wrapper):
        chain.append(type(layer).__name__)
        layer = layer.env
    assert chain[:4] == ["CompetitionReward", "PreprocessObs", "ActionRepeat", "PDAction"]
    assert env.metadata["pd_scale"] == 0.5 and env.metadata["action_repeat"] == 2
    env.reset(seed=0)
    _, _, _, _, info = env.step(ZERO)
    assert info["physics_steps"] == 2
    env.close()


def test_make_vec_env_seeds_same_step_autoreset_and_lean_info():
    tasks = ["kick_to_target", "goalie_penalty_kick"]
    vec = make_vec_env(tasks, seed=5)
    assert vec.single_action_space == gym.spaces.Box(-1, 1, (12,), np.float32)
    assert vec.metadata["torque_high"] == T1_TORQUE_LIMIT.tolist()
    obs, info = vec.reset()
    assert obs.shape == (2, 89) and info == {}
    for i, task in enumerate(tasks):  # env i is make_env(task, seed=5 + i): its next reset matches row i
        single = make_env(task, seed=5 + i)()
        np.testing.assert_array_equal(single.reset()[0], obs[i])
        single.close()
    for _ in range(400):  # zero torque: both fall at ~278 steps, in the same vector step
        obs, _, terminated, truncated, info = vec.step(np.zeros((2, 12), np.float32))
        if terminated.any():
            break
    assert terminated.all() and info["_final_obs"].all()
    assert info["final_obs"][0].shape == (89,) and not np.array_equal(info["final_obs"][0], obs[0])
    assert bool(info["final_info"]["reward_terms"]["robot_fallen"][1])
    assert set(info) == {"final_obs", "_final_obs", "final_info", "_final_info"}
    vec.close()


def test_async_vec_env_matches_sync():
    kwargs = {"task_list": ["kick_to_target", "kick_to_target"], "seed": 3, "max_episode_steps": 50}
    sync, asyn = make_vec_env(**kwargs), make_vec_env(vec_env="async", **kwargs)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(sync.reset(seed=7)[0], asyn.reset(seed=7)[0])
    for _ in range(60):
        actions = rng.uniform(-1, 1, (2, 12)).astype(np.float32)
        a, b = sync.step(actions), asyn.step(actions)
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)
    sync.close()
    asyn.close()


def test_action_wrappers_are_the_inner_layer():
    for mode, cls in (("torque", TorqueAction), ("pd", PDAction)):
        env = make_env("kick_to_target", action_mode=mode)()
        layer = env
        while not isinstance(layer, cls):
            layer = layer.env
        assert isinstance(layer.env, gym.wrappers.TimeLimit)
        assert isinstance(env, CompetitionReward)
        env.close()


def _expected_chain(mode: str, profile: str, repeat: int, lean: bool, sim: str, bonus: bool) -> list[str]:
    """Our wrappers of one configuration, innermost first, written out (the layers of envs/wrappers.py)."""
    fused = mode == "pd" and sim == "fast"
    action = {"torque": "TorqueAction", "pd": "FusedPDRepeat" if fused else "PDAction", "command": "CommandAction"}
    reward = {"competition": ["CompetitionReward"], "pressure_shot": ["ShapedEnvReward"], "tight": ["ShapedEnvReward"]}
    return ([action[mode]] + (["ActionRepeat"] if repeat > 1 and not fused else []) + ["PreprocessObs"]
            + reward.get(profile, []) + (["MacroBonus"] if bonus else []) + (["LeanInfo"] if lean else []))


class _Outer(gym.Wrapper):
    """A stand-in for make_env's `outer` (the residual striker)."""


def _check_chain(tmp_path, mode, profile, repeat, lean, sim, bonus, outer) -> None:
    """make_env's chain == the chain written out == WRAPPER_CHAIN's steps for the configuration."""
    command = None
    if mode == "command":
        command = CommandOptions(controller=str(write_controller(tmp_path)))
        if bonus:
            clip = write_clip(tmp_path / "kick.npz", **clip_arrays())
            command = CommandOptions(controller=command.controller, macro=str(clip),
                                     macro_reward=MacroReward(bonus=0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the env-reward profiles warn that they are misaligned
        env = make_env("kick_to_target", action_mode=mode, reward_profile=profile, action_repeat=repeat,
                       lean_info=lean, sim=sim, command=command, outer=_Outer if outer else None,
                       max_episode_steps=20)()
    built, layer = [], env
    while isinstance(layer, gym.Wrapper):
        if not type(layer).__module__.startswith("gymnasium"):  # gym.make's TimeLimit, OrderEnforcing, ...
            built.insert(0, type(layer).__name__)
        layer = layer.env
    settings = ChainSettings(get_task("kick_to_target"), mode, profile, repeat, 1.0, lean, command, sim)
    declared = [step.wrapper.__name__ for step in WRAPPER_CHAIN if step.used(settings)]
    expected = _expected_chain(mode, profile, repeat, lean, sim, bonus) + (["_Outer"] if outer else [])
    assert built == expected and declared + (["_Outer"] if outer else []) == expected
    env.close()


@pytest.mark.parametrize("mode, profile, repeat, lean, sim, bonus, outer", [
    ("torque", "competition", 1, False, "official", False, False),
    ("torque", "env", 2, True, "official", False, True),
    ("torque", "competition", 2, False, "fast", False, False),
    ("pd", "pressure_shot", 2, False, "official", False, False),
    ("pd", "tight", 3, True, "fast", False, True),
    ("command", "competition", 1, False, "official", False, False),
    ("command", "env", 2, True, "fast", True, True),
    ("command", "tight", 1, False, "official", True, False),
])
def test_wrapper_chain(tmp_path, mode, profile, repeat, lean, sim, bonus, outer) -> None:
    _check_chain(tmp_path, mode, profile, repeat, lean, sim, bonus, outer)


@pytest.mark.slow
def test_wrapper_chain_of_every_configuration(tmp_path) -> None:
    for mode, profile, repeat, lean, sim, bonus, outer in itertools.product(
            ["torque", "pd", "command"], ["competition", "env", "pressure_shot", "tight"], [1, 2], [False, True],
            ["official", "fast"], [False, True], [False, True]):
        if bonus and mode != "command":
            continue
        _check_chain(tmp_path, mode, profile, repeat, lean, sim, bonus, outer)
