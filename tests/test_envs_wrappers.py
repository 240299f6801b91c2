"""Wrappers on small fake envs: torque mapping, PD torques, action repeat, reward profiles, lean info."""

import gymnasium as gym
import numpy as np
import pytest

from envs.preprocess import INFO_FIELDS
from envs.tasks import get_task
from envs.wrappers import (
    T1_DEFAULT_POSE,
    T1_TORQUE_LIMIT,
    ActionRepeat,
    CompetitionReward,
    LeanInfo,
    PDAction,
    PreprocessObs,
    ShapedEnvReward,
    TorqueAction,
    adjust_reward_config,
    pd_torques,
    reward_terms_now,
)


class FakeEnv(gym.Env):
    """Raw obs [q (12), qd (12), ...]; reward = step number; terminates at `end`; records applied actions."""

    def __init__(self, low=-T1_TORQUE_LIMIT, high=T1_TORQUE_LIMIT, q=0.0, qd=0.0, end=100, terms=None):
        self.action_space = gym.spaces.Box(np.float32(low), np.float32(high), (12,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (39,), np.float32)
        self.q, self.qd, self.end = q, qd, end
        self.terms = terms or [{} for _ in range(end + 1)]
        self.actions = []
        self.t = 0

    def _obs(self):
        obs = np.zeros(39, np.float32)
        obs[:12] = self.q + 0.01 * self.t  # joints move a little each step
        obs[12:24] = self.qd
        return obs

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.actions.append(np.array(action, dtype=np.float64))
        self.t += 1
        info = {"reward_terms": self.terms[self.t]}
        return self._obs(), float(self.t), self.t >= self.end, False, info

    def compute_reward(self):
        return self.terms[self.t]


def test_torque_mapping_at_the_bounds():
    env = TorqueAction(FakeEnv())
    assert env.action_space == gym.spaces.Box(-1, 1, (12,), np.float32)
    np.testing.assert_array_equal(env.action(-np.ones(12)), -T1_TORQUE_LIMIT)
    np.testing.assert_array_equal(env.action(np.ones(12)), T1_TORQUE_LIMIT)
    np.testing.assert_array_equal(env.action(np.zeros(12)), 0.0)
    np.testing.assert_array_equal(env.action(np.full(12, 3.0)), T1_TORQUE_LIMIT)  # clipped
    low, high = np.linspace(-3, 0, 12), np.linspace(1, 5, 12)
    skew = TorqueAction(FakeEnv(low=low, high=high))
    np.testing.assert_allclose(skew.action(-np.ones(12)), low, atol=1e-6)
    np.testing.assert_allclose(skew.action(np.ones(12)), high, atol=1e-6)
    np.testing.assert_allclose(skew.action(np.zeros(12)), (low + high) / 2, atol=1e-6)
    np.testing.assert_allclose(skew.action(np.full(12, 0.5)), low + 0.75 * (high - low), atol=1e-6)


def test_pd_torques_hand_computed():
    # q = 0, qd = 1, targets = default pose: Kp * q* - Kd, then clipped to the limits.
    torques = pd_torques(T1_DEFAULT_POSE, np.zeros(12), np.ones(12), -T1_TORQUE_LIMIT, T1_TORQUE_LIMIT)
    leg = [200 * -0.2 - 5, -5, -5, min(200 * 0.4 - 5, 65), 50 * -0.25 - 1, -1]  # [-45, -5, -5, 65, -13.5, -1]
    np.testing.assert_allclose(torques, leg * 2)


def test_pd_wrapper_applies_targets_around_the_default_pose():
    inner = FakeEnv(q=0.1, qd=-0.2)
    env = PDAction(inner, scale=0.5)
    env.reset()
    env.step(np.full(12, 0.5))  # targets = q* + 0.25; error = q* + 0.15; damping term + 0.2 Kd
    leg = [200 * (-0.2 + 0.15) + 1, 31.0, 30.0, 65.0, 50 * (-0.25 + 0.15) + 0.2, 50 * 0.15 + 0.2]  # 31 > 30 N·m
    np.testing.assert_allclose(inner.actions[0], leg * 2, rtol=1e-6)
    # the next step's torques use the joint state of the new obs (q = 0.11)
    env.step(np.zeros(12))
    np.testing.assert_allclose(inner.actions[1][1], 200 * (0.0 - 0.11) + 1.0, rtol=1e-6)


def test_action_repeat_sums_rewards_and_stops_at_termination():
    inner = FakeEnv(end=5)
    env = ActionRepeat(inner, 3)
    env.reset()
    _, reward, terminated, _, info = env.step(np.zeros(12))
    assert (reward, terminated, info["physics_steps"]) == (1 + 2 + 3, False, 3)
    _, reward, terminated, _, info = env.step(np.zeros(12))
    assert (reward, terminated, info["physics_steps"]) == (4 + 5, True, 2)
    assert len(inner.actions) == 5


def test_pd_torques_recomputed_every_repeated_step():
    inner = FakeEnv()
    env = ActionRepeat(PDAction(inner, scale=1.0), 3)
    env.reset()
    env.step(np.zeros(12))
    hip_roll = [a[1] for a in inner.actions]  # target 0, q = 0.00, 0.01, 0.02
    np.testing.assert_allclose(hip_roll, [0.0, -2.0, -4.0], atol=1e-5)


def test_reward_terms_now_restores_the_contact_counter():
    class Base:
        ball_hits_by_robot, _ball_contact_active = 0, False

        def compute_reward(self):
            self.ball_hits_by_robot += 1
            self._ball_contact_active = True
            return {"ball_hits": self.ball_hits_by_robot}

    base = Base()
    assert reward_terms_now(base) == {"ball_hits": 1}
    assert (base.ball_hits_by_robot, base._ball_contact_active) == (0, False)


def test_competition_reward_is_the_change_in_potential():
    pk = get_task("goalie_penalty_kick")
    terms = [
        {"robot_distance_ball": 0.1, "ball_vel_twd_goal": 0.0, "robot_fallen": False},  # reset: Phi = 0.025
        {"robot_distance_ball": 0.2, "ball_vel_twd_goal": 1.0, "robot_fallen": False},  # 0.05 + 1.5
        {"robot_distance_ball": 1.5, "ball_vel_twd_goal": 2.0, "robot_fallen": True, "goal_scored": True},
    ]  # last: 0.375 + 3.0 - 1.5 + 2.5 = 4.375
    env = CompetitionReward(FakeEnv(end=2, terms=terms), pk)
    env.reset()
    assert env.phi == pytest.approx(0.025)
    rewards = [env.step(np.zeros(12))[1] for _ in range(2)]
    np.testing.assert_allclose(rewards, [1.55 - 0.025, 4.375 - 1.55])
    assert sum(rewards) == pytest.approx(4.375 - 0.025)  # Phi(s_T) - Phi(s_0)


def test_shaping_profiles_rescale_a_copy_of_the_env_weights():
    pk = {"robot_distance_ball": 10.0, "ball_vel_twd_goal": 1.0, "goal_scored": 25.0, "offside": -10.0,
          "ball_hits": -1.0, "robot_fallen": -15.0, "ball_blocked": -20.0}
    adjusted = adjust_reward_config(pk, "tight")
    assert adjusted == {**pk, "ball_vel_twd_goal": 1.2, "goal_scored": 30.0}
    assert adjust_reward_config({"success": 20.0, "stall_time": -2.0, "kick_power": 1.0}, "pressure_shot") == {
        "success": pytest.approx(22.0), "stall_time": -3.0, "kick_power": pytest.approx(1.1)
    }
    assert pk["goal_scored"] == 25.0


def test_shaped_env_reward_timeout_penalty_and_shot_bonus():
    class Truncating(FakeEnv):
        def step(self, action):
            obs, reward, _, _, info = super().step(action)
            return obs, reward, False, self.t >= 2, info

    env = ShapedEnvReward(Truncating(terms=[{}, {}, {"shot_speed": 0.5}]), "tight")
    env.reset()
    assert env.step(np.zeros(12))[1] == pytest.approx(1.0)
    assert env.step(np.zeros(12))[1] == pytest.approx(2.0 - 0.1 + 0.05)


def test_preprocess_wrapper_and_lean_info():
    # PreprocessObs needs the env info keys; LeanInfo keeps only the terminal reward terms.
    info_keys = {name: np.zeros(width) for name, width in INFO_FIELDS}
    info_keys["robot_quat"] = np.array([0, 0, 0, 1.0], np.float32)

    class WithInfo(FakeEnv):
        def reset(self, *, seed=None, options=None):
            obs, _ = super().reset()
            return obs, dict(info_keys)

        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, terminated, truncated, {**info_keys, **info}

    kick = get_task("kick_to_target")
    env = LeanInfo(PreprocessObs(WithInfo(end=2, terms=[{}, {}, {"success": True}]), kick))
    obs, info = env.reset()
    assert obs.shape == (89,) and info == {}
    np.testing.assert_array_equal(obs[24:27], [0, 0, -1])
    np.testing.assert_array_equal(obs[86:], [0, 0, 1])
    assert env.step(np.zeros(12))[4] == {}
    assert env.step(np.zeros(12))[4] == {"reward_terms": {"success": True}}
    full = PreprocessObs(WithInfo(), kick)
    _, info = full.reset()
    assert info["task_name"] == "kick_to_target"
    np.testing.assert_array_equal(info["task_index"], [0, 0, 1])
