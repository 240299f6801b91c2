"""The mocap reader: valid files load; every kind of bad file is a MocapError naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from bc.mocap import T1_LEG_JOINTS, MocapError, load_mocap
from tests.mocap_files import clip_arrays, write_clip


def test_valid_clip_loads_with_unit_quaternions(tmp_path) -> None:
    arrays = clip_arrays(n=11, frequency=30.0)
    arrays["qpos"][:, 3:7] *= 2.0  # not unit: normalised on load
    clip = load_mocap(write_clip(tmp_path / "walk.npz", **arrays))
    assert clip.name == "walk.npz" and clip.n_frames == 11 and clip.frequency == 30.0
    np.testing.assert_allclose(np.linalg.norm(clip.qpos[:, 3:7], axis=1), 1.0)
    assert clip.segments == ((0, 11),)


def test_split_points_make_segments(tmp_path) -> None:
    clip = load_mocap(write_clip(tmp_path / "c.npz", **clip_arrays(n=10), split_points=np.array([0, 4, 10])))
    assert clip.segments == ((0, 4), (4, 10))


def test_joint_names_reorder_columns_to_the_env_order(tmp_path) -> None:
    arrays = clip_arrays(n=3)
    names = ["root"] + [f"robot_0:{j.title()}" for j in T1_LEG_JOINTS]
    order = np.r_[6:12, 0:6]  # the file lists the right leg first
    arrays["qpos"][:, 7:] = np.arange(12)[order]
    arrays["qvel"][:, 6:] = np.arange(12)[order]
    clip = load_mocap(write_clip(tmp_path / "c.npz", **arrays, joint_names=np.array(names)[np.r_[0, 1 + order]]))
    np.testing.assert_array_equal(clip.qpos[0, 7:], np.arange(12))
    np.testing.assert_array_equal(clip.qvel[0, 6:], np.arange(12))


def _drop(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _set(key, value):
    return lambda a: {**a, key: value(a) if callable(value) else value}


def _nan_at(key, row):
    def edit(a):
        array = a[key].copy()
        array[row, -1] = np.nan if key == "qpos" else np.inf
        return {**a, key: array}
    return edit


@pytest.mark.parametrize("edit, message", [
    (_drop("qvel"), "missing key(s) qvel"),
    (_drop("frequency"), "missing key(s) frequency"),
    (_set("qpos", lambda a: a["qpos"][:, :17]), "qpos must have shape (T, 19)"),
    (_set("qvel", lambda a: np.zeros((11, 20))), "qvel must have shape (T, 18)"),
    (_nan_at("qpos", 3), "qpos has NaN or inf values (first at frame 3)"),
    (_nan_at("qvel", 5), "qvel has NaN or inf values (first at frame 5)"),
    (_set("qpos", lambda a: a["qpos"][:1]), "qpos has 1 frames but qvel has 11"),
    (lambda a: {**a, "qpos": a["qpos"][:1], "qvel": a["qvel"][:1]}, "needs at least 2 frames, got 1"),
    (_set("frequency", np.array(0.0)), "frequency must be one positive number"),
    (_set("frequency", np.array([30.0, 50.0])), "frequency must be one positive number"),
    (_set("qpos", lambda a: np.zeros((11, 19))), "root quaternion of norm 0"),
    (_set("split_points", np.array([0, 20])), "split_points must be non-decreasing frame indices"),
])
def test_bad_files_raise_naming_the_file(tmp_path, edit, message) -> None:
    path = write_clip(tmp_path / "bad_clip.npz", **edit(clip_arrays(n=11)))
    with pytest.raises(MocapError) as info:
        load_mocap(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_missing_and_unreadable_files(tmp_path) -> None:
    with pytest.raises(MocapError, match="no such file"):
        load_mocap(tmp_path / "absent.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(MocapError, match=r"text\.npz: not a readable \.npz file"):
        load_mocap(tmp_path / "text.npz")
