"""The mocap dataset builder: resampling, body-frame labels, observation fields, output keys, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest

from bc import build_dataset as cli
from bc.mocap import load_mocap
from bc.mocap_dataset import (
    BuildOptions,
    SentinelOptions,
    action_labels,
    build_dataset,
    mocap_observations,
    resample,
)
from envs.preprocess import OBS_SLICES
from envs.wrappers import T1_DEFAULT_POSE, T1_TORQUE_LIMIT, pd_torques
from rlcore.cliutil import run_cli
from tests.mocap_files import clip_arrays, write_clip, yaw_quat

SEED_KEYS = {"observations", "actions", "sentinels", "sentinel_total", "sentinel_pct", "total_samples",
             "sentinel_files", "sentinel_file_total", "sentinel_file_sentinel"}


def _clip(tmp_path, name="walk.npz", **kwargs):
    return load_mocap(write_clip(tmp_path / name, **clip_arrays(**kwargs)))


def test_resampling_to_the_decision_rate(tmp_path) -> None:
    arrays = clip_arrays(n=11, frequency=50.0)  # 0.2 s
    arrays["qpos"][:, 3:7] = yaw_quat(np.linspace(0.0, 1.0, 11))
    clip = load_mocap(write_clip(tmp_path / "c.npz", **arrays))
    (traj,) = resample(clip, 500.0)
    assert len(traj.qpos) == 101 and traj.dt == pytest.approx(0.002)
    np.testing.assert_allclose(traj.qpos[:, 7:], T1_DEFAULT_POSE + np.linspace(0.0, 0.1, 101)[:, None], atol=1e-12)
    np.testing.assert_allclose(traj.qpos[:, 3:7], yaw_quat(np.linspace(0.0, 1.0, 101)), atol=1e-12)  # slerp
    assert traj.source_frame[[0, 5, 10, 100]].tolist() == [0, 1, 1, 10]
    (half,) = resample(clip, 250.0)  # action_repeat 2
    assert len(half.qpos) == 51


def test_resampling_never_crosses_split_points(tmp_path) -> None:
    clip = load_mocap(write_clip(tmp_path / "c.npz", **clip_arrays(n=10, frequency=50.0),
                                 split_points=np.array([0, 4, 10])))
    lengths = [len(t.qpos) for t in resample(clip, 500.0)]
    assert lengths == [31, 51]  # 3 and 5 source intervals, each with both ends


def test_pd_and_torque_labels_track_the_next_frame(tmp_path) -> None:
    (traj,) = resample(_clip(tmp_path), 500.0)
    pd = action_labels(traj, "pd")
    torque = action_labels(traj, "torque")
    assert pd.shape == torque.shape == (100, 12)
    np.testing.assert_allclose(pd, traj.qpos[1:, 7:] - T1_DEFAULT_POSE, atol=1e-6)
    # the torque label is what the PD wrapper applies for the pd label
    expected = pd_torques(T1_DEFAULT_POSE + pd, traj.qpos[:-1, 7:], traj.qvel[:-1, 6:], -T1_TORQUE_LIMIT,
                          T1_TORQUE_LIMIT) / T1_TORQUE_LIMIT
    np.testing.assert_allclose(torque, expected, atol=1e-6)


def test_command_labels_are_in_the_body_frame(tmp_path) -> None:
    # heading +90 degrees, moving along world +y at 0.5 m/s, turning at 0.3 rad/s: forward 0.5, left 0, yaw 0.3
    arrays = clip_arrays(n=5, yaw=np.pi / 2, velocity=(0.0, 0.5, 0.0))
    arrays["qvel"][:, 3:6] = [0.0, 0.0, 0.3]
    (traj,) = resample(load_mocap(write_clip(tmp_path / "c.npz", **arrays)), 500.0)
    np.testing.assert_allclose(action_labels(traj, "command"), np.tile([0.5, 0.0, 0.3], (len(traj.qpos) - 1, 1)),
                               atol=1e-6)
    arrays["qvel"][:, 0:3] = [-3.0, 0.0, 0.0]  # backwards-right of the robot, clipped to [-1, 1]
    (traj,) = resample(load_mocap(write_clip(tmp_path / "d.npz", **arrays)), 500.0)
    np.testing.assert_allclose(action_labels(traj, "command")[0], [0.0, 1.0, 0.3], atol=1e-6)


def test_observation_fields_from_the_mocap_state(tmp_path) -> None:
    (traj,) = resample(_clip(tmp_path, yaw=np.pi / 2, velocity=(0.0, 0.5, 0.0)), 500.0)
    obs = mocap_observations(traj, np.array([0.0, 1.0, 0.0], np.float32))
    assert obs.shape == (101, 89) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:, OBS_SLICES["joint_pos"]], traj.qpos[:, 7:], atol=1e-6)
    np.testing.assert_allclose(obs[:, OBS_SLICES["projected_gravity"]], np.tile([0, 0, -1], (101, 1)), atol=1e-6)
    np.testing.assert_allclose(obs[:, OBS_SLICES["robot_velocimeter"]], np.tile([0.5, 0, 0], (101, 1)), atol=1e-6)
    np.testing.assert_allclose(obs[:, OBS_SLICES["robot_accelerometer"]], np.tile([0, 0, 9.81], (101, 1)), atol=1e-5)
    np.testing.assert_array_equal(obs[:, OBS_SLICES["player_team"]], np.tile([1, 0], (101, 1)))
    np.testing.assert_array_equal(obs[:, OBS_SLICES["task_one_hot"]], np.tile([0, 1, 0], (101, 1)))
    assert not obs[:, OBS_SLICES["ball_xpos_rel_robot"]].any()


def test_build_counts_stride_one_hots_and_exact_max_samples(tmp_path) -> None:
    clips = [_clip(tmp_path, "a.npz"), _clip(tmp_path, "b.npz")]
    built = build_dataset(clips, BuildOptions(action_mode="pd", stride=2))
    assert built.observations.shape == (2 * 50 * 3, 89) and built.actions.shape == (300, 12)
    np.testing.assert_array_equal(built.observations[:3, OBS_SLICES["task_one_hot"]], np.eye(3))  # frame-major
    capped = build_dataset(clips, BuildOptions(action_mode="pd", stride=2, max_samples=200))
    assert len(capped.observations) == 200 and [r.samples for r in capped.files] == [150, 50]
    single = build_dataset(clips, BuildOptions(action_mode="torque", stride=1, task_mode="kick"))
    assert single.observations.shape == (200, 89)


def test_sentinels_write_the_pattern_on_chosen_source_frames(tmp_path) -> None:
    clips = [_clip(tmp_path, "kick.npz"), _clip(tmp_path, "walk.npz")]
    options = BuildOptions(action_mode="command", stride=1, task_mode="goalie", context_mode="sentinel",
                           sentinels=SentinelOptions(files=frozenset({"kick.npz"}), frames=frozenset({0})))
    built = build_dataset(clips, options)
    marked = built.sentinels.astype(bool)
    assert marked.sum() == 5  # samples 0..4 map to source frame 0 (nearest frame at 50 Hz -> 500 Hz)
    np.testing.assert_array_equal(built.actions[marked], np.tile([1.0, -1.0, 1.0], (5, 1)))
    np.testing.assert_allclose(built.observations[marked][:, OBS_SLICES["ball_xpos_rel_robot"]], [[0.3, 0, 0]] * 5)
    arrays = built.arrays(options)
    assert arrays["sentinel_total"] == 5 and arrays["sentinel_files"].tolist() == ["kick.npz", "walk.npz"]
    assert arrays["sentinel_file_sentinel"].tolist() == [5, 0]


@pytest.mark.parametrize("kwargs, message", [
    ({"action_mode": "torque", "sentinels": SentinelOptions(files=frozenset(), frames=frozenset({0}))},
     "need the command action mode"),
    ({"action_mode": "command", "context_mode": "all"}, "needs sentinels enabled"),
    ({"stride": 0}, "must be >= 1"),
    ({"ball_radius": 3.0, "ball_far": 2.0}, "ball radius < ball far"),
])
def test_inconsistent_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        BuildOptions(**kwargs)


def test_cli_writes_the_seed_keys_plus_mode_and_sources(tmp_path, capsys) -> None:
    root = tmp_path / "mocap"
    root.mkdir()
    write_clip(root / "walking.npz", **clip_arrays())
    write_clip(root / "running.npz", **clip_arrays(n=21, frequency=100.0))
    out = tmp_path / "out" / "bc.npz"
    code = run_cli(cli.main, ["--input-root", str(root), "--output", str(out), "--files", "walking,running,jogging",
                              "--action-mode", "command", "--enable-sentinels", "--sentinel-files", "walking",
                              "--report"])
    assert code == 0
    captured = capsys.readouterr()
    assert "skipping missing mocap file" in captured.err and "Wrote 300 samples" in captured.out
    data = np.load(out, allow_pickle=False)
    assert SEED_KEYS | {"action_mode", "source_files"} <= set(data.files)
    assert str(data["action_mode"]) == "command" and data["source_files"].tolist() == ["walking.npz", "running.npz"]
    assert data["observations"].shape == (300, 89) and data["actions"].shape == (300, 3)
    assert data["total_samples"] == 300 and data["sentinel_file_total"].tolist() == [150, 150]


@pytest.mark.parametrize("extra, message", [
    (["--files", "absent", "--strict-files"], "missing mocap file"),
    (["--files", "absent"], "none of the selected mocap files exist"),
    (["--files", "broken"], "broken.npz: qpos must have shape (T, 19)"),
    (["--enable-sentinels", "--sentinel-frames", "3-1", "--action-mode", "command"], "--sentinel-frames must be"),
    (["--enable-sentinels", "--sentinel-pattern", "1,2", "--action-mode", "command"], "--sentinel-pattern must be"),
    (["--enable-sentinels"], "need the command action mode"),
    (["--stride", "0"], "must be >= 1"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, extra, message) -> None:
    write_clip(tmp_path / "broken.npz", **{**clip_arrays(), "qpos": np.zeros((11, 18))})
    code = run_cli(cli.main, ["--input-root", str(tmp_path), "--output", str(tmp_path / "o.npz"), *extra])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert code == 2 and len(errors) == 1 and message in errors[0]
