"""The task table, official weights, task-list allocation and the --tasks / --task-weights parsers."""

from collections import Counter

import numpy as np
import pytest

from envs.tasks import (
    TASK_NAMES,
    TASKS,
    build_task_list,
    get_task,
    parse_task_names,
    parse_task_weights,
    score_weights,
    task_for_obs_dim,
)

G, O, K = TASK_NAMES


def test_table_order_ids_suffixes_widths_and_one_hots():
    assert TASK_NAMES == ("goalie_penalty_kick", "obstacle_penalty_kick", "kick_to_target")
    assert [t.env_id for t in TASKS] == [
        "LowerT1GoaliePenaltyKick-v0", "LowerT1ObstaclePenaltyKick-v0", "LowerT1KickToTarget-v0"
    ]
    assert [t.suffix for t in TASKS] == ["gpk", "opk", "ktt"]
    assert [t.obs_dim for t in TASKS] == [45, 54, 39]
    for task, expected in zip(TASKS, np.eye(3, dtype=np.float32), strict=True):
        assert task.one_hot.dtype == np.float32
        np.testing.assert_array_equal(task.one_hot, expected)
    assert [task_for_obs_dim(d).name for d in (45, 54, 39)] == list(TASK_NAMES)


def test_official_weights_and_configurable_ktt_steps():
    pk = {"robot_distance_ball": 0.25, "ball_vel_twd_goal": 1.5, "goal_scored": 2.5, "offside": -3.0,
          "ball_hits": -0.2, "robot_fallen": -1.5, "ball_blocked": -0.5, "steps": -1.0}
    assert score_weights(G) == pk and score_weights(O) == pk
    assert score_weights(K) == {"offside": -1.0, "success": 2.0, "distance": 0.5, "steps": -0.3}
    assert score_weights(K, ktt_steps_weight=-0.2)["steps"] == -0.2
    assert score_weights(G, ktt_steps_weight=-0.2)["steps"] == -1.0
    weights = score_weights(K)
    weights["success"] = 99.0
    assert get_task(K).score_weights["success"] == 2.0


def test_unknown_task_and_width():
    with pytest.raises(ValueError, match="unknown task 'penalty'"):
        get_task("penalty")
    with pytest.raises(ValueError, match="width 40"):
        task_for_obs_dim(40)


@pytest.mark.parametrize(
    ("n_envs", "weights", "expected"),
    [
        (6, None, [G, G, O, O, K, K]),
        (3, None, [G, O, K]),
        (1, None, [G]),
        (2, None, [G, O]),  # fewer slots than tasks: ties go to the earlier task
        (6, {G: 2, O: 1, K: 0}, [G, G, G, G, O, O]),
        (3, {G: 2, O: 1, K: 0}, [G, G, O]),
        (7, {G: 1, O: 1, K: 1}, [G, G, G, O, O, K, K]),  # largest remainder, tie -> earlier
        (3, {G: 10, O: 1, K: 1}, [G, O, K]),  # proportional gives 3/0/0: no positive task left empty
        (4, {G: 10, O: 1, K: 1}, [G, G, O, K]),
        (12, {G: 10, O: 1, K: 1}, [G] * 10 + [O, K]),
        (5, {K: 1}, [K] * 5),
    ],
)
def test_proportional_allocation(n_envs, weights, expected):
    assert build_task_list(n_envs, weights) == expected


def test_allocation_restricted_tasks_and_bounds():
    assert build_task_list(4, tasks=[K, G]) == [G, G, K, K]
    assert build_task_list(4, {G: 5, O: 1, K: 1}, tasks=[O, K]) == [O, O, K, K]
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        w = dict(zip(TASK_NAMES, rng.choice([0.0, 0.5, 1.0, 3.0, 10.0], 3).tolist(), strict=True))
        if sum(w.values()) == 0:
            continue
        counts = Counter(build_task_list(n, w))
        assert sum(counts.values()) == n
        positive = [t for t in TASK_NAMES if w[t] > 0]
        if n >= len(positive):
            assert all(counts[t] >= 1 for t in positive)
        assert all(counts[t] == 0 for t in TASK_NAMES if w[t] == 0)
        assert build_task_list(n, w) == build_task_list(n, w)


def test_allocation_errors():
    with pytest.raises(ValueError, match="n_envs"):
        build_task_list(0)
    with pytest.raises(ValueError, match="must not all be zero"):
        build_task_list(3, {G: 0, O: 0, K: 0})
    with pytest.raises(ValueError, match="must not all be zero"):
        build_task_list(3, {G: 1}, tasks=[K])
    with pytest.raises(ValueError, match="unknown task"):
        build_task_list(3, tasks=["nope"])


def test_parse_task_weights():
    assert parse_task_weights("goalie_penalty_kick=2,kick_to_target=1") == {G: 2.0, O: 0.0, K: 1.0}
    assert parse_task_weights(" kick_to_target = 0.5 ") == {G: 0.0, O: 0.0, K: 0.5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("goalie=2", "unknown task 'goalie'"),
        ("goalie_penalty_kick", "must look like 'name=weight'"),
        ("goalie_penalty_kick=", "must look like 'name=weight'"),
        ("=2", "must look like 'name=weight'"),
        ("goalie_penalty_kick=two", "must be a number"),
        ("goalie_penalty_kick=-1", "must be finite and >= 0"),
        ("goalie_penalty_kick=nan", "must be finite and >= 0"),
        ("goalie_penalty_kick=inf", "must be finite and >= 0"),
        ("goalie_penalty_kick=0,kick_to_target=0", "must not all be zero"),
        ("goalie_penalty_kick=1,goalie_penalty_kick=2", "more than once"),
        (",", "must look like"),
    ],
)
def test_parse_task_weights_errors(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_task_weights(text)
    assert "\n" not in str(info.value)


def test_parse_task_names():
    assert parse_task_names("all") == list(TASK_NAMES)
    assert parse_task_names("kick_to_target,goalie_penalty_kick,kick_to_target") == [G, K]
    for bad in ("", "all,goalie_penalty_kick", "kick"):
        with pytest.raises(ValueError):
            parse_task_names(bad)
