"""The scripted stand controller: pitch from projected gravity, hand-computed actions, it stands."""

import numpy as np
import pytest

from bc.stand import StandController, torso_pitch
from envs.factory import make_env
from envs.preprocess import OBS_SLICES, projected_gravity
from envs.wrappers import T1_DEFAULT_POSE


def _obs(pitch=0.0, gyro_y=0.0):
    """An 89-dim observation at the default pose, at rest, with the torso pitched by `pitch`."""
    obs = np.zeros((1, 89), np.float32)
    obs[0, OBS_SLICES["joint_pos"]] = T1_DEFAULT_POSE
    quat = [0.0, np.sin(pitch / 2), 0.0, np.cos(pitch / 2)]  # xyzw, rotation about y
    obs[0, OBS_SLICES["projected_gravity"]] = projected_gravity(np.array(quat))
    obs[0, OBS_SLICES["robot_gyro"].start + 1] = gyro_y
    return obs


def test_pitch_from_gravity_equals_the_quaternion_formula():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(200, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    obs = np.zeros((200, 89), np.float32)
    obs[:, OBS_SLICES["projected_gravity"]] = projected_gravity(quats)
    x, y, z, w = quats.T
    np.testing.assert_allclose(torso_pitch(obs), np.arcsin(2 * (w * y - z * x)), atol=2e-6)


def test_pitch_along_a_real_episode():
    env = make_env("goalie_penalty_kick")()
    obs, info = env.reset(seed=0)
    for _ in range(300):  # zero torque: the robot tips over, pitch sweeps to about -90 degrees
        x, y, z, w = info["robot_quat"].astype(np.float64)
        sin_pitch = 2 * (w * y - z * x)
        pitch = torso_pitch(obs[None])[0]
        assert np.sin(pitch) == pytest.approx(sin_pitch, abs=1e-6)
        if abs(sin_pitch) < 0.95:  # asin is ill-conditioned near +-90 degrees (float32 obs)
            assert pitch == pytest.approx(np.arcsin(sin_pitch), abs=1e-5)
        obs, _, terminated, _, info = env.step(np.zeros(12, np.float32))
        if terminated:
            break
    env.close()


def test_actions_hand_computed():
    np.testing.assert_allclose(StandController()(_obs()), np.zeros((1, 12)), atol=1e-6)
    # feedback = 2.0 * 0.1 + 0.2 * 0.5 = 0.3 rad on both ankle-pitch targets; torque 50 * 0.3 = 15 of 24 N·m
    expected = np.zeros(12)
    expected[[4, 10]] = 15.0 / 24.0
    np.testing.assert_allclose(StandController()(_obs(0.1, 0.5)), expected[None], atol=1e-6)
    pd = StandController(action_mode="pd", pd_scale=0.5)(_obs(0.1, 0.5))
    expected[[4, 10]] = 0.3 / 0.5
    np.testing.assert_allclose(pd, expected[None], atol=1e-6)
    single = StandController()(_obs(0.1, 0.5)[0])
    assert single.shape == (12,) and single.dtype == np.float32
    with pytest.raises(ValueError, match="action_mode"):
        StandController(action_mode="command")


def test_stands_past_the_plain_pd_fall_and_pd_mode_gives_the_same_motion():
    """Plain PD falls near step 576 (docs/cloning.md); the controller is still up at 1000."""
    runs = {}
    for mode in ("torque", "pd"):
        env = make_env("goalie_penalty_kick", action_mode=mode, max_episode_steps=1000)()
        policy = StandController(action_mode=mode)
        obs, _ = env.reset(seed=0)
        trajectory = [obs]
        while True:
            obs, _, terminated, truncated, info = env.step(policy(obs))
            trajectory.append(obs)
            if terminated or truncated:
                break
        assert truncated and not terminated and not info["reward_terms"]["robot_fallen"]
        runs[mode] = np.stack(trajectory)
        env.close()
    np.testing.assert_allclose(runs["torque"], runs["pd"], atol=1e-4)
