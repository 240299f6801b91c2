"""The 89-dim observation: layout index by index, projected gravity, batch == single step, platform shapes."""

import gymnasium as gym
import numpy as np
import pytest
import sai_mujoco  # noqa: F401

from envs.preprocess import INFO_FIELDS, OBS_DIM, OBS_LAYOUT, OBS_SLICES, preprocess, preprocess_step, projected_gravity
from envs.tasks import TASKS

# docs/observation.md's table, written out independently of OBS_LAYOUT.
SEED_TABLE = {
    "joint_pos": (0, 12), "joint_vel": (12, 24), "projected_gravity": (24, 27), "robot_gyro": (27, 30),
    "robot_accelerometer": (30, 33), "robot_velocimeter": (33, 36), "goal_team_0_rel_robot": (36, 39),
    "goal_team_1_rel_robot": (39, 42), "goal_team_0_rel_ball": (42, 45), "goal_team_1_rel_ball": (45, 48),
    "ball_xpos_rel_robot": (48, 51), "ball_velp_rel_robot": (51, 54), "ball_velr_rel_robot": (54, 57),
    "player_team": (57, 59), "goalkeeper_team_0_xpos_rel_robot": (59, 62),
    "goalkeeper_team_0_velp_rel_robot": (62, 65), "goalkeeper_team_1_xpos_rel_robot": (65, 68),
    "goalkeeper_team_1_velp_rel_robot": (68, 71), "target_xpos_rel_robot": (71, 74),
    "target_velp_rel_robot": (74, 77), "defender_xpos": (77, 86), "task_one_hot": (86, 89),
}


@pytest.fixture(scope="module")
def steps():
    """(task, raw obs, info) after 30 random-torque steps of each task: 3 different states per task."""
    out = []
    for task in TASKS:
        env = gym.make(task.env_id)
        obs, info = env.reset(seed=3)
        rng = np.random.default_rng(0)
        for i in range(90):
            obs, _, _, _, info = env.step(rng.uniform(-20, 20, 12).astype(np.float32))
            if i % 30 == 29:
                out.append((task, obs.copy(), info))
        env.close()
    return out


def test_layout_matches_the_seed_table():
    assert OBS_DIM == 89
    assert [name for name, _ in OBS_LAYOUT] == list(SEED_TABLE)
    assert {k: (s.start, s.stop) for k, s in OBS_SLICES.items()} == SEED_TABLE


def test_every_index_against_its_source(steps):
    for task, obs, info in steps:
        out = preprocess_step(obs, info, task.one_hot)
        assert out.shape == (89,) and out.dtype == np.float32
        np.testing.assert_array_equal(out[0:12], obs[0:12])
        np.testing.assert_array_equal(out[12:24], obs[12:24])
        x, y, z, w = info["robot_quat"].astype(np.float64)
        gravity = [2 * (w * y - x * z), -2 * (w * x + y * z), 1 - 2 * (w * w + z * z)]
        np.testing.assert_allclose(out[24:27], gravity, atol=1e-6)
        for name, (start, stop) in SEED_TABLE.items():
            if name in dict(INFO_FIELDS):
                np.testing.assert_array_equal(out[start:stop], np.asarray(info[name], dtype=np.float32), name)
        np.testing.assert_array_equal(out[86:89], task.one_hot)


def test_projected_gravity_formula():
    np.testing.assert_allclose(projected_gravity(np.array([0.0, 0.0, 0.0, 1.0])), [0, 0, -1])
    theta = 0.3  # pitch about y: gravity in the body frame is (sin, 0, -cos)
    quat = np.array([0.0, np.sin(theta / 2), 0.0, np.cos(theta / 2)])
    np.testing.assert_allclose(projected_gravity(quat), [np.sin(theta), 0.0, -np.cos(theta)], atol=1e-12)
    rng = np.random.default_rng(1)
    quats = rng.normal(size=(50, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    v = np.array([0.0, 0.0, -1.0])
    for q in quats:  # the a - b + c, literally
        q_vec, w = q[:3], q[3]
        expected = v * (2 * w * w - 1) - 2 * w * np.cross(q_vec, v) + 2 * q_vec * (q_vec @ v)
        np.testing.assert_allclose(projected_gravity(q), expected, atol=1e-12)
        x, y, z = q_vec  # and R(q)^T v with the rotation matrix
        rot = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
        np.testing.assert_allclose(projected_gravity(q), rot.T @ v, atol=1e-12)
    np.testing.assert_allclose(projected_gravity(quats), np.stack([projected_gravity(q) for q in quats]))


def _platform_batch(items):
    """Batched info as gymnasium's vector env builds it: (N, k) arrays, `_key` masks, nested reward_terms,
    and the platform's own task_index in an order that is NOT ours."""
    infos = [info for _, _, info in items]
    batch = {}
    for key in infos[0]:
        if key == "reward_terms":
            batch[key] = {k: np.array([i[key][k] for i in infos], dtype=object) for k in infos[0][key]}
        else:
            batch[key] = np.stack([np.asarray(i[key]) for i in infos])
        batch[f"_{key}"] = np.ones(len(infos), dtype=bool)
    batch["task_index"] = np.tile(np.array([0, 0, 1], np.float32), (len(infos), 1))
    return batch


def test_batch_equals_single_step_and_ignores_platform_task_index(steps):
    for task in TASKS:
        items = [s for s in steps if s[0] is task]
        obs = np.stack([o for _, o, _ in items])
        out = preprocess(obs, _platform_batch(items))
        assert out.shape == (3, 89) and out.dtype == np.float32
        for row, (_, o, info) in zip(out, items, strict=True):
            np.testing.assert_array_equal(row, preprocess_step(o, info, task.one_hot))


def test_platform_calling_shapes(steps):
    task, obs, info = steps[0]
    single = preprocess_step(obs, info, task.one_hot)
    np.testing.assert_array_equal(preprocess(obs, info), single)  # (D,) obs, unbatched info
    one = preprocess(obs[None], info)  # (1, D) obs with an unbatched info (the PyTorch save path)
    assert one.shape == (1, 89)
    np.testing.assert_array_equal(one[0], single)
    two = preprocess(np.stack([obs, obs]), info)  # an unbatched info broadcasts over the batch
    np.testing.assert_array_equal(two, np.stack([single, single]))
    zeros = preprocess(np.zeros((1, task.obs_dim), np.float32), info)
    np.testing.assert_array_equal(zeros[0, :24], 0.0)


def test_task_inferred_from_raw_width(steps):
    for task, obs, info in steps:
        np.testing.assert_array_equal(preprocess(obs, info)[86:89], task.one_hot)
    task, obs, info = steps[0]
    with pytest.raises(ValueError, match="width 40"):
        preprocess(np.zeros(40, np.float32), info)
    explicit = preprocess(obs, info, np.array([0, 0, 1], np.float32))
    np.testing.assert_array_equal(explicit[86:89], [0, 0, 1])
