"""The fast twin (envs/fastsim.py) equals sai_mujoco step for step: these tests define "correct".

Each case runs the official env and the twin side by side from the same reset seed with the same actions
(the policy reads the OFFICIAL env's observation, so a difference could not hide behind feedback) and
compares at every step: the raw obs, the 89-dim vector, every info field it reads, every reward term, the
env reward and the terminated / truncated flags (floats within 1e-5, booleans exact), then the episode
length and the official score. Scripted episodes set the ball moving right after reset (in both envs
alike) to reach each way an episode can end: goal, offside, keeper / defender block, fall, KickToTarget
success, truncation; one touches the ball twice to exercise the contact counter and the latch.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from bc.stand import StandController
from envs.factory import make_env
from envs.fastsim import FastSoccerEnv, make_fast_env
from envs.fastsim_native import load_kernel
from envs.preprocess import INFO_FIELDS, preprocess_step
from envs.tasks import get_task
from scoring.report import episode_report

TOL = 1e-5
STAND = StandController()

Action = Callable[[np.ndarray, dict, np.random.Generator], np.ndarray]


def stand(obs: np.ndarray, info: dict, task: str, high: np.ndarray) -> np.ndarray:
    return (STAND(preprocess_step(obs, info, get_task(task).one_hot)) * high).astype(np.float32)


def _ball_dof(env: gym.Env) -> int:
    import mujoco

    model = env.unwrapped.sim.model._model
    return int(model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "env:ball")])


def _set_ball_velocity(env: gym.Env, velocity) -> None:
    dof = _ball_dof(env)
    env.unwrapped.sim.data._data.qvel[dof:dof + 3] = velocity


def _close(a, b, what: str) -> None:
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        assert bool(a) == bool(b), what
        return
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL, err_msg=what)


def compare_step(task: str, official: tuple, fast: tuple, step: int) -> None:
    (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) = official, fast
    where = f"{task} step {step}"
    _close(o1, o2, f"{where}: raw obs")
    one_hot = get_task(task).one_hot
    _close(preprocess_step(o1, i1, one_hot), preprocess_step(o2, i2, one_hot), f"{where}: 89-dim obs")
    for key, _ in INFO_FIELDS:
        _close(i1[key], i2[key], f"{where}: info {key}")
    assert bool(i1["success"]) == bool(i2["success"]), where
    t1, t2 = i1["reward_terms"], i2["reward_terms"]
    assert list(t1) == list(t2), f"{where}: reward term keys"
    for key in t1:
        _close(t1[key], t2[key], f"{where}: term {key}")
    _close(r1, r2, f"{where}: env reward")
    assert (bool(te1), bool(tr1)) == (bool(te2), bool(tr2)), f"{where}: terminated/truncated"


def run_pair(task: str, seed: int, policy: str = "stand", ball_velocity=None, max_steps: int | None = None,
             twin_cls=FastSoccerEnv, native: bool = True) -> dict:
    """Play one episode on both envs; returns the terminal terms, length, flags and the score of each.

    `native` False runs the twin's Python step instead of its C step (when the C step is available)."""
    spec = get_task(task)
    kwargs = {} if max_steps is None else {"max_episode_steps": max_steps}
    official = gym.make(spec.env_id, **kwargs)
    twin = twin_cls(gym.make(spec.env_id), spec, max_episode_steps=max_steps, native=native)
    rng = np.random.default_rng(seed)
    high = official.action_space.high
    try:
        obs, info = official.reset(seed=seed)
        obs2, info2 = twin.reset(seed=seed)
        _close(obs, obs2, "reset obs")
        if ball_velocity is not None:
            _set_ball_velocity(official, ball_velocity)
            _set_ball_velocity(twin, ball_velocity)
        step = 0
        while True:
            if policy == "stand":
                action = stand(obs, info, task, high)
            elif policy == "random":
                action = (rng.uniform(-1, 1, 12) * high).astype(np.float32)
            else:
                action = np.zeros(12, np.float32)
            a, b = official.step(action), twin.step(action)
            step += 1
            compare_step(task, a, b, step)
            obs, _, terminated, truncated, info = a
            if terminated or truncated:
                break
        return {"terms": info["reward_terms"], "length": step, "terminated": bool(terminated),
                "truncated": bool(truncated),
                "scores": (episode_report(a[4]["reward_terms"], task)["comp_total"],
                           episode_report(b[4]["reward_terms"], task)["comp_total"])}
    finally:
        official.close()
        twin.close()


def _assert_scores_equal(result: dict) -> None:
    official, fast = result["scores"]
    assert official == pytest.approx(fast, abs=TOL)


# Ball velocities (m/s) found on the official env: each ends the episode the way its name says.
SCRIPTED = [
    ("goalie_penalty_kick", 0, "goal", (-3.0, 0.0, 0.0)),
    ("goalie_penalty_kick", 1, "blocked", (-10.0, 0.0, 0.0)),
    ("goalie_penalty_kick", 2, "offside", (-6.0, 5.0, 0.0)),
    ("obstacle_penalty_kick", 0, "goal", (-5.0, -0.9, 3.0)),
    ("obstacle_penalty_kick", 0, "blocked", (-5.0, 0.4, 3.0)),
    ("obstacle_penalty_kick", 0, "offside", (-6.0, 0.0, 2.5)),
]
OUTCOME_TERM = {"goal": "goal_scored", "blocked": "ball_blocked", "offside": "offside"}


@pytest.mark.parametrize("native", [True, False], ids=["c-step", "python-step"])
@pytest.mark.parametrize(("task", "seed", "outcome", "velocity"), SCRIPTED,
                         ids=[f"{t[:8]}-{o}" for t, _, o, _ in SCRIPTED])
def test_scripted_penalty_kick_endings_match(task, seed, outcome, velocity, native):
    result = run_pair(task, seed, ball_velocity=velocity, native=native)
    assert result["terminated"] and bool(result["terms"][OUTCOME_TERM[outcome]]), result["terms"]
    _assert_scores_equal(result)


@pytest.mark.parametrize("task", ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"])
def test_falls_under_zero_and_random_torques_match(task):
    for seed, policy in ((0, "zero"), (1, "random"), (2, "random")):
        result = run_pair(task, seed, policy=policy)
        assert result["terminated"] and result["length"] < 1000
        if task != "kick_to_target":
            assert result["terms"]["robot_fallen"]
        _assert_scores_equal(result)


def _towards_target(seed: int, speed: float) -> tuple[float, float, float]:
    probe = gym.make("LowerT1KickToTarget-v0")
    _, info = probe.reset(seed=seed)
    probe.close()
    direction = (info["target_xpos_rel_robot"] - info["ball_xpos_rel_robot"])[:2]
    return (*(speed * direction / np.linalg.norm(direction)), 0.0)


def test_kick_to_target_success_matches():
    result = run_pair("kick_to_target", 0, ball_velocity=_towards_target(0, 6.0))
    assert result["terminated"] and result["terms"]["success"]
    _assert_scores_equal(result)


def test_kick_to_target_ball_out_of_the_field_matches():
    result = run_pair("kick_to_target", 1, ball_velocity=_towards_target(1, -8.0))
    assert result["terminated"] and result["terms"]["offside"] and not result["terms"]["success"]
    _assert_scores_equal(result)


def test_ball_rolled_back_into_the_robot_counts_contacts_and_truncates():
    """The ball rolls into the standing robot: the first touch latches robot_distance_ball at 1.5."""
    result = run_pair("goalie_penalty_kick", 0, ball_velocity=(3.0, 0.0, 0.0), max_steps=1500)
    assert result["truncated"] and not result["terminated"] and result["length"] == 1500
    assert result["terms"]["robot_distance_ball"] == 1.5
    _assert_scores_equal(result)


@pytest.mark.parametrize("task", ["obstacle_penalty_kick", "kick_to_target"])
def test_standing_to_a_short_time_limit_matches(task):
    for seed in (3, 4):
        result = run_pair(task, seed, max_steps=400)
        assert result["truncated"] and result["length"] == 400
        _assert_scores_equal(result)


@pytest.mark.slow
def test_whole_standing_episode_truncates_at_5000():
    result = run_pair("goalie_penalty_kick", 5)
    assert result["truncated"] and not result["terminated"] and result["length"] == 5000
    _assert_scores_equal(result)


@pytest.mark.parametrize("task", ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"])
def test_pd_mode_with_action_repeat_matches_the_official_chain(task):
    """FusedPDRepeat on the twin == PDAction + ActionRepeat(10) on the official env (89-dim obs, rewards)."""
    stand_pd = StandController(action_mode="pd")
    rng = np.random.default_rng(7)
    for seed, source in ((0, "stand"), (1, "random")):
        official = make_env(task, action_mode="pd", action_repeat=10, max_episode_steps=800)()
        fast = make_env(task, action_mode="pd", action_repeat=10, max_episode_steps=800, sim="fast")()
        obs, _ = official.reset(seed=seed)
        obs2, _ = fast.reset(seed=seed)
        np.testing.assert_array_equal(obs, obs2)
        decisions = 0
        while True:
            action = stand_pd(obs) if source == "stand" else rng.uniform(-0.3, 0.3, 12).astype(np.float32)
            a, b = official.step(action), fast.step(action)
            decisions += 1
            _close(a[0], b[0], f"{task} decision {decisions}: obs")
            _close(a[1], b[1], f"{task} decision {decisions}: reward")
            assert a[2:4] == b[2:4] and a[4]["physics_steps"] == b[4]["physics_steps"]
            for key in a[4]["reward_terms"]:
                _close(a[4]["reward_terms"][key], b[4]["reward_terms"][key], key)
            obs = a[0]
            if a[2] or a[3]:
                break
        assert decisions == 80 if source == "stand" else decisions < 80
        official.close()
        fast.close()


class _WrongGoalSpeed(FastSoccerEnv):
    """A twin with one term perturbed: the ball speed towards goal off by 1e-4 m/s."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info["reward_terms"]["ball_vel_twd_goal"] += 1e-4
        return obs, reward, terminated, truncated, info


def test_the_parity_check_catches_a_perturbed_term():
    with pytest.raises(AssertionError, match="ball_vel_twd_goal"):
        run_pair("goalie_penalty_kick", 0, ball_velocity=(-3.0, 0.0, 0.0), max_steps=50, twin_cls=_WrongGoalSpeed)


def test_python_step_is_bitwise_equal_to_the_official_env():
    """The twin's Python step reads the same MjData arrays with the same numpy calls: not even a last bit
    differs (the C step may round norms, tanh and velocity dot products differently, within TOL)."""
    spec = get_task("goalie_penalty_kick")
    official = gym.make(spec.env_id)
    twin = FastSoccerEnv(gym.make(spec.env_id), spec, native=False)
    rng = np.random.default_rng(3)
    a, b = official.reset(seed=3), twin.reset(seed=3)
    for step in range(150):
        action = (rng.uniform(-1, 1, 12) * official.action_space.high * 0.3).astype(np.float32)
        a, b = official.step(action), twin.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] and a[2:4] == b[2:4], step
        for key, _ in INFO_FIELDS:
            np.testing.assert_array_equal(a[4][key], b[4][key])
        assert a[4]["reward_terms"] == b[4]["reward_terms"]
        if a[2] or a[3]:
            break


def test_fast_env_spaces_and_reset_are_the_official_ones():
    for task in ("goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"):
        spec = get_task(task)
        official = gym.make(spec.env_id)
        twin = make_fast_env(task)
        assert twin.observation_space == official.observation_space
        assert twin.action_space == official.action_space
        assert twin.reward_config == type(official.unwrapped).reward_config
        a, b = official.reset(seed=11), twin.reset(seed=11)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[0].shape == (spec.obs_dim,)
        official.close()
        twin.close()


@pytest.mark.skipif(load_kernel() is None, reason="no C compiler: the twin runs its Python step")
def test_c_step_differs_from_the_official_env_only_in_last_bits():
    """The bound of what the C step does not reproduce exactly (norms, tanh, velocity dot products): the raw
    float32 obs within one float32 rounding of the value, float64 info vectors within 1e-12, terms within 1e-6
    (robot_distance_ball is a float32 tanh), the env reward within float32 rounding."""
    for task in ("goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"):
        spec = get_task(task)
        official = gym.make(spec.env_id)
        twin = FastSoccerEnv(gym.make(spec.env_id), spec, native=True)
        rng = np.random.default_rng(5)
        official.reset(seed=5)
        twin.reset(seed=5)
        while True:
            action = (rng.uniform(-1, 1, 12) * official.action_space.high * 0.3).astype(np.float32)
            a, b = official.step(action), twin.step(action)
            np.testing.assert_allclose(a[0], b[0], rtol=2 ** -23, atol=1e-12)
            for key, _ in INFO_FIELDS:
                np.testing.assert_allclose(a[4][key], b[4][key], rtol=0, atol=1e-12, err_msg=key)
            for key, value in a[4]["reward_terms"].items():
                assert float(value) == pytest.approx(float(b[4]["reward_terms"][key]), abs=1e-6), key
            assert float(a[1]) == pytest.approx(float(b[1]), abs=2e-6)
            assert a[2:4] == b[2:4]
            if a[2] or a[3]:
                break
