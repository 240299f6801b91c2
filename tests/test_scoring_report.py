"""Per-episode official reports and aggregation, with hand-computed numbers."""

import numpy as np
import pytest

from scoring.report import EpisodeRecord, aggregate, episode_report, fell, plain_terms

PK, KTT = "goalie_penalty_kick", "kick_to_target"
PK_ZEROS = {"robot_distance_ball": 0, "ball_vel_twd_goal": 0, "goal_scored": 0, "offside": 0, "ball_hits": 0,
            "robot_fallen": 0, "ball_blocked": 0}


def test_penalty_kick_report():
    report = episode_report({**PK_ZEROS, "robot_distance_ball": 2, "ball_vel_twd_goal": 1, "goal_scored": 1}, PK)
    assert report["comp_robot_distance_ball"] == 0.5
    assert report["comp_ball_vel_twd_goal"] == 1.5
    assert report["comp_goal_scored"] == 2.5
    assert report["comp_steps"] == -1.0
    assert report["comp_total"] == pytest.approx(3.5)
    assert report["missing_component_count"] == 0
    only_goal = episode_report({"goal_scored": True}, PK)
    assert only_goal["comp_total"] == pytest.approx(1.5) and only_goal["missing_component_count"] == 6


def test_kick_to_target_report_and_steps_weight():
    report = episode_report({"success": True, "distance": 2, "offside": False}, KTT)
    assert (report["comp_success"], report["comp_offside"], report["comp_distance"]) == (2.0, 0.0, 1.0)
    assert report["comp_steps"] == -0.3 and report["comp_total"] == pytest.approx(2.7)
    assert episode_report({"success": True, "distance": 2, "offside": False}, KTT, -0.2)["comp_total"] == 2.8
    empty = episode_report({}, KTT)
    assert empty["comp_total"] == -0.3 and empty["missing_component_count"] == 3
    extra = episode_report({"robot_distance_ball": 0.9, "offside": np.True_, "success": False, "distance": 0.0}, KTT)
    assert extra["comp_total"] == pytest.approx(-1.3)  # unweighted terms are ignored; np.bool_ counts 1


def test_plain_terms_are_json_types():
    terms = plain_terms({"a": np.True_, "b": False, "c": np.float32(0.5), "d": np.float64(2.0), "e": 3})
    assert terms == {"a": True, "b": False, "c": 0.5, "d": 2.0, "e": 3.0}
    assert [type(v) for v in terms.values()] == [bool, bool, float, float, float]


def _rec(task, terms, terminated=True, length=100, seed=0):
    return EpisodeRecord(task, seed, terms, length, terminated, not terminated)


def test_fell():
    assert fell(_rec(PK, {**PK_ZEROS, "robot_fallen": True}))
    assert not fell(_rec(PK, PK_ZEROS, terminated=True))  # e.g. blocked: terminated but standing
    assert fell(_rec(KTT, {"success": False, "offside": False, "distance": 0.1}))
    assert not fell(_rec(KTT, {"success": True, "offside": False, "distance": 0.9}))
    assert not fell(_rec(KTT, {"success": False, "offside": True, "distance": 0.0}))
    assert not fell(_rec(KTT, {"success": False, "offside": False, "distance": 0.1}, terminated=False))


def test_aggregate():
    records = [
        _rec(KTT, {"success": True, "offside": False, "distance": 1.0}, length=100),  # 2 + 0.5 - 0.3 = 2.2
        _rec(KTT, {"success": False, "offside": True, "distance": 0.0}, length=200),  # -1 - 0.3 = -1.3
        _rec(KTT, {"success": False, "offside": False, "distance": 0.2}, length=300),  # 0.1 - 0.3 = -0.2 (fell)
        _rec(KTT, {"success": False, "distance": 0.2}, terminated=False, length=5000),  # -0.2, offside missing
    ]
    s = aggregate(records)
    assert s["comp_total_mean"] == pytest.approx((2.2 - 1.3 - 0.2 - 0.2) / 4)
    assert s["comp_total_std"] == pytest.approx(np.std([2.2, -1.3, -0.2, -0.2]))
    assert s["comp_success_mean"] == pytest.approx(0.5)
    assert s["comp_offside_mean"] == pytest.approx(-0.25)
    assert s["comp_steps_mean"] == pytest.approx(-0.3)
    assert s["missing_component_count"] == 1
    assert (s["success_rate"], s["offside_rate"], s["fallen_rate"]) == (0.25, 0.25, 0.25)
    assert s["ep_len_mean"] == 1400.0 and s["n_episodes"] == 4
    with pytest.raises(ValueError, match="no episodes"):
        aggregate([])
    with pytest.raises(ValueError, match="one task"):
        aggregate([_rec(KTT, {}), _rec(PK, {})])
