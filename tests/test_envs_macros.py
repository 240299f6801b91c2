"""Kick macros: loading (local files, the hub path with a fake huggingface_hub, the cache, bad files),
frame timing on the env's time base, and the sentinel trigger against the real envs' info."""

from __future__ import annotations

import sys
import types

import mujoco
import numpy as np
import pytest

import envs.hub as hub
import envs.macros as macros
from envs.factory import make_env
from envs.macros import MacroPlayer, TriggerConfig, goal_vector, load_macro
from envs.wrappers import T1_DEFAULT_POSE
from tests.mocap_files import clip_arrays, write_clip

SENTINEL = np.array([1.0, -1.0, 1.0])
LOAD = {"default_pose": T1_DEFAULT_POSE, "action_scale": 1.0, "clip_actions": 1.0}


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch):
    """No file read or fetched by another test (macros' own cache and envs.hub's)."""
    monkeypatch.setattr(macros, "_CACHE", {})
    monkeypatch.setattr(hub, "_FETCHED", {})


def test_load_local_file_gives_controller_actions(tmp_path):
    arrays = clip_arrays(n=7, frequency=30.0)
    arrays["qpos"][3, 7] = T1_DEFAULT_POSE[0] + 5.0  # beyond the clip
    path = write_clip(tmp_path / "kick.npz", **arrays)
    actions, frequency = load_macro(str(path), default_pose=T1_DEFAULT_POSE, action_scale=0.5, clip_actions=2.0)
    expected = np.clip((arrays["qpos"][:, 7:19] - T1_DEFAULT_POSE) / 0.5, -2.0, 2.0)
    assert actions.dtype == np.float32 and actions.shape == (7, 12)
    np.testing.assert_allclose(actions, expected, rtol=1e-6)
    assert actions[3, 0] == 2.0 and frequency == 30.0
    first, _ = load_macro(str(path), max_frames=3, **LOAD)
    assert first.shape == (3, 12)


def test_extra_qpos_columns_are_ignored(tmp_path):
    arrays = clip_arrays(n=4)
    arrays["qpos"] = np.hstack([arrays["qpos"], np.full((4, 2), 9.0)])  # e.g. arm joints after the legs
    actions, _ = load_macro(str(write_clip(tmp_path / "k.npz", **arrays)), **LOAD)
    assert actions.shape == (4, 12) and np.abs(actions).max() < 0.2


@pytest.mark.parametrize(("change", "message"), [
    ({"qpos": None}, "no 'qpos'"),
    ({"qpos": np.zeros((5, 18))}, "qpos must have shape"),
    ({"frequency": None}, "no 'frequency'"),
    ({"frequency": np.array(0.0)}, "frequency must be one positive number"),
    ({"frequency": np.array([50.0, 60.0])}, "frequency must be one positive number"),
])
def test_bad_files_are_one_line_errors(tmp_path, change, message):
    arrays = {k: v for k, v in {**clip_arrays(), **change}.items() if v is not None}
    path = write_clip(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message) as info:
        load_macro(str(path), **LOAD)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_unknown_source_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="neither an existing .npz file nor one of"):
        load_macro(str(tmp_path / "missing.npz"), **LOAD)
    with pytest.raises(ValueError, match="neither"):
        load_macro("no_such_clip", **LOAD)
    path = write_clip(tmp_path / "k.npz", **clip_arrays())
    with pytest.raises(ValueError, match="max_frames"):
        load_macro(str(path), max_frames=0, **LOAD)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_macro(str(tmp_path / "text.npz"), **LOAD)


def test_hub_path_downloads_once_then_hits_the_cache(tmp_path, monkeypatch):
    arrays = clip_arrays(n=6, frequency=60.0)
    local = write_clip(tmp_path / "goal_kick.npz", **arrays)
    calls = []

    def hf_hub_download(*args, **kwargs):
        calls.append((args, kwargs))
        return str(local)

    fake = types.ModuleType("huggingface_hub")
    fake.hf_hub_download = hf_hub_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    fetches = []
    monkeypatch.setattr(macros, "hf_download", lambda *a, **k: fetches.append(a) or hub.hf_download(*a, **k))
    monkeypatch.chdir(tmp_path / "..")  # no local file called goal_kick here
    actions, frequency = load_macro("goal_kick", **LOAD)
    assert len(calls) == 1
    args, kwargs = calls[0]
    named = {**dict(zip(("repo_id", "filename"), args, strict=False)), **kwargs}
    assert named["repo_id"] == "SaiResearch/booster_dataset"
    assert named["filename"] == "soccer/booster_lower_t1/goal_kick.npz"
    assert named["repo_type"] == "dataset"
    assert frequency == 60.0 and actions.shape == (6, 12)
    actions[:] = 7.0  # the caller's copy; the cache must not see it
    again, _ = load_macro("goal_kick.npz", **LOAD)
    assert len(calls) == 1 and len(fetches) == 1  # served from load_macro's own cache
    np.testing.assert_allclose(again, np.clip(arrays["qpos"][:, 7:19] - T1_DEFAULT_POSE, -1, 1), rtol=1e-6)
    load_macro("goal_kick", robot="other_robot", **LOAD)
    assert len(calls) == 2 and "soccer/other_robot/goal_kick.npz" in str(calls[1])


def test_hub_unavailable_is_a_value_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ValueError) as info:
        load_macro("kick_ball1", **LOAD)
    assert "\n" not in str(info.value)


def played_frames(player: MacroPlayer) -> list[int]:
    """Frame index of every env step from start() until the macro ends."""
    frames, rows = [], {tuple(row): i for i, row in enumerate(player.actions)}
    player.start()
    while player.active:
        index = player.frame_index
        frames.append(rows[tuple(player.next_action())])
        assert frames[-1] == index
    assert player.frame_index == -1
    return frames


def distinct_actions(n: int) -> np.ndarray:
    return np.arange(n * 12, dtype=np.float32).reshape(n, 12) / 100


def test_frames_follow_the_file_frequency_on_the_env_time_base():
    # 50 Hz on the 500 Hz env: each frame held 10 steps.
    assert played_frames(MacroPlayer(distinct_actions(4), 50.0)) == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
    # 30 Hz: frame k covers t in [k/30, (k+1)/30): steps 0-16, 17-33, 34-49 (50 * 0.002 * 30 = 3 ends it).
    assert played_frames(MacroPlayer(distinct_actions(3), 30.0)) == [0] * 17 + [1] * 17 + [2] * 16
    # The env's own rate: one frame per step (the seed's behaviour, now only when the rates agree).
    assert played_frames(MacroPlayer(distinct_actions(5), 500.0)) == [0, 1, 2, 3, 4]
    # A slower env (action repeat 10, dt 0.02) skips frames of a 100 Hz clip.
    assert played_frames(MacroPlayer(distinct_actions(7), 100.0, env_dt=0.02)) == [0, 2, 4, 6]


def test_counters_abort_and_reset():
    player = MacroPlayer(distinct_actions(2), 500.0)
    assert not player.active and player.frame_index == -1
    with pytest.raises(RuntimeError):
        player.next_action()
    played_frames(player)
    player.start()
    player.next_action()
    player.abort()
    assert not player.active
    player.abort()  # nothing playing: not counted again
    assert player.counters() == {"macro_trigger_count": 2, "macro_active_steps": 3, "macro_aborted_count": 1}
    player.start()
    player.reset()
    assert not player.active
    assert player.counters() == {"macro_trigger_count": 0, "macro_active_steps": 0, "macro_aborted_count": 0}
    with pytest.raises(ValueError, match="shape"):
        MacroPlayer(np.zeros((0, 12)), 50.0)


def move_ball(env, offset_xy: np.ndarray) -> dict:
    """Put the ball at robot + offset (horizontal) in the real env and return the env's fresh info."""
    base = env.unwrapped
    robot = base.sim.data.get_site_xpos(base._root_site)
    ball = base.sim.data.get_joint_qpos("env:ball").copy()
    ball[:2] = robot[:2] + offset_xy
    base.sim.data.set_joint_qpos("env:ball", ball)
    mujoco.mj_forward(base.sim.model._model, base.sim.data._data)
    return base._get_info()


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("task", ["goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target"])
def test_trigger_with_the_real_envs_info(task):
    env = make_env(task)()
    _, info = env.reset(seed=3)
    player = MacroPlayer(distinct_actions(3), 50.0)
    goal = goal_vector(info, task)
    assert np.linalg.norm(goal[:2]) > 1.0  # a real direction, not the seed's zero vector
    aim = unit(goal[:2])
    ahead = move_ball(env, 0.35 * aim)
    assert np.linalg.norm(ahead["ball_xpos_rel_robot"]) > 0.6  # the 3-D norm the seed tested never passes
    assert player.should_trigger(SENTINEL, ahead, task)
    assert player.should_trigger(np.array([0.97, -0.99, 1.0]), ahead, task)
    assert not player.should_trigger(np.array([1.0, 1.0, 1.0]), ahead, task)  # wrong sentinel
    assert not player.should_trigger(np.array([0.9, -1.0, 1.0]), ahead, task)  # below the threshold
    assert not player.should_trigger(SENTINEL, move_ball(env, 0.9 * aim), task)  # too far
    side = np.array([-aim[1], aim[0]])
    assert not player.should_trigger(SENTINEL, move_ball(env, 0.35 * side), task)  # misaligned (cos 0)
    assert not player.should_trigger(SENTINEL, move_ball(env, -0.35 * aim), task)  # behind the robot
    # Alignment threshold: cos 0.7 passes, cos 0.5 fails.
    for cos, expected in ((0.7, True), (0.5, False)):
        direction = cos * aim + np.sqrt(1 - cos**2) * side
        assert player.should_trigger(SENTINEL, move_ball(env, 0.35 * direction), task) is expected
    env.close()


def test_goal_vectors_of_the_real_envs():
    goalie = make_env("goalie_penalty_kick")()
    _, info = goalie.reset(seed=0)
    assert not np.any(info["target_xpos_rel_robot"])  # the seed's choice: zero in the goalie task
    np.testing.assert_array_equal(goal_vector(info, "goalie_penalty_kick"), info["goal_team_0_rel_robot"])
    # The goal attacked is the one goal_scored tests: team 0 scores at goal_post_south (x = -10.97).
    base = goalie.unwrapped
    assert base.current_team == 0 and info["player_team"][0] == 1
    np.testing.assert_allclose(base.sim.data.get_site_xpos("goal_post_south")
                               - base.sim.data.get_site_xpos(base._root_site), info["goal_team_0_rel_robot"])
    switched = {**info, "player_team": np.array([0, 1])}
    np.testing.assert_array_equal(goal_vector(switched, "goalie_penalty_kick"), info["goal_team_1_rel_robot"])
    goalie.close()
    obstacle = make_env("obstacle_penalty_kick")()
    _, info = obstacle.reset(seed=0)
    base = obstacle.unwrapped
    target = base.sim.data.get_site_xpos(base.goal_site) - base.sim.data.get_site_xpos(base._root_site)
    np.testing.assert_allclose(target, goal_vector(info, "obstacle_penalty_kick"))
    obstacle.close()
    with pytest.raises(ValueError, match="unknown task"):
        goal_vector(info, "tennis")


def test_trigger_config_is_used():
    player = MacroPlayer(distinct_actions(1), 50.0, trigger=TriggerConfig(threshold=0.5, ball_radius=2.0,
                                                                          alignment=0.9, pattern=(1.0, 1.0, 1.0)))
    info = {"ball_xpos_rel_robot": np.array([1.5, 0.0, -0.7]), "target_xpos_rel_robot": np.array([5.0, 0.5, -0.7])}
    assert player.should_trigger(np.array([0.6, 0.6, 0.6]), info, "kick_to_target")
    assert not player.should_trigger(SENTINEL, info, "kick_to_target")
    assert not player.should_trigger(np.array([0.6, 0.6]), info, "kick_to_target")  # not a 3-dim command

