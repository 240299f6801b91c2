"""Training-evaluation keys (docs/scoring.md), the legacy score and the learning-curve picture, with
hand-computed numbers on synthetic episode records."""

import pytest

from scoring.curves import eval_series, render_learning_curve
from scoring.eval_metrics import C_MEAN, C_OVERALL, S_OVERALL, competition_metrics, legacy_metrics
from scoring.harness import EvalResult
from scoring.legacy import env_reward_config, legacy_score, legacy_summary
from scoring.report import EpisodeRecord

PK, KTT = "goalie_penalty_kick", "kick_to_target"
PK_GOAL = {"robot_distance_ball": 2.0, "ball_vel_twd_goal": 1.0, "goal_scored": True, "offside": False,
           "ball_hits": 0.0, "robot_fallen": False, "ball_blocked": False}
PK_FALL = {**PK_GOAL, "robot_distance_ball": 0.0, "ball_vel_twd_goal": 0.0, "goal_scored": False, "robot_fallen": True}
KTT_HIT = {"success": True, "distance": 2.0, "offside": False}


def _result() -> EvalResult:
    return EvalResult({
        PK: [EpisodeRecord(PK, 0, PK_GOAL, 100, True, False), EpisodeRecord(PK, 1, PK_FALL, 300, True, False)],
        KTT: [EpisodeRecord(KTT, 2, KTT_HIT, 50, True, False), EpisodeRecord(KTT, 3, {}, 5000, False, True)],
    })


def test_env_reward_config_is_the_envs_own() -> None:
    assert env_reward_config(KTT) == {"offside": -10.0, "success": 20.0, "distance": 5.0}
    assert env_reward_config(PK)["goal_scored"] == 25.0 and env_reward_config(PK)["robot_fallen"] == -15.0


def test_legacy_score_by_hand() -> None:
    config = {"goal_scored": 25.0, "robot_fallen": -15.0, "distance": 5.0}
    # 25 * 1 + (-15) * 0 - 0.05 * 100; `distance` is not in the terms and counts nothing
    assert legacy_score({"goal_scored": True, "robot_fallen": False, "other": 9.0}, config, 100) == pytest.approx(20.0)
    assert legacy_score({}, config, 40, steps_weight=-0.5) == pytest.approx(-20.0)


def test_legacy_metrics_by_hand() -> None:
    # PK (env weights rdb 10, bvtg 1, goal 25, fallen -15): goal 20 + 1 + 25 - 5 = 41; fall -15 - 15 = -30
    # KTT (success 20, distance 5): 20 + 10 - 2.5 = 27.5; empty terms: -250
    metrics = legacy_metrics(_result())
    assert metrics[f"eval/{PK}"] == pytest.approx((41.0 - 30.0) / 2)
    assert metrics[f"eval/{KTT}"] == pytest.approx((27.5 - 250.0) / 2)
    assert metrics[S_OVERALL] == pytest.approx((5.5 - 111.25) / 2)
    assert next(iter(metrics)) == S_OVERALL
    assert metrics[f"eval/{PK}/goal_scored_mean"] == 0.5 and metrics[f"eval/{PK}/success_mean"] == 0.0
    assert metrics[f"eval/{KTT}/distance_mean"] == 1.0
    assert metrics["eval/ep_len_mean"] == pytest.approx((100 + 300 + 50 + 5000) / 4)
    assert legacy_summary(_result().records[KTT], steps_weight=0.0)["score"] == pytest.approx((30.0 + 0.0) / 2)


def test_competition_metrics_by_hand() -> None:
    # official PK: goal 0.5 + 1.5 + 2.5 - 1 = 3.5; fall -1.5 - 1 = -2.5 -> mean 0.5
    # official KTT: 2 + 1 - 0.3 = 2.7; empty -0.3 (3 terms missing) -> mean 1.2
    metrics = competition_metrics(_result())
    assert list(metrics)[:4] == [C_OVERALL, C_MEAN, f"comp_eval/{PK}", f"comp_eval/{KTT}"]
    assert metrics[f"comp_eval/{PK}"] == pytest.approx(0.5) and metrics[f"comp_eval/{KTT}"] == pytest.approx(1.2)
    assert metrics[C_OVERALL] == pytest.approx(1.7) == metrics["eval_comp/comp_total_sum"]
    assert metrics[C_MEAN] == pytest.approx(0.85)
    assert metrics[f"eval_comp/{PK}/comp_total"] == pytest.approx(0.5)
    assert metrics[f"eval_comp/{PK}/comp_goal_scored"] == pytest.approx(1.25)
    assert metrics[f"eval_comp/{PK}/comp_steps"] == pytest.approx(-1.0)
    assert metrics[f"eval_comp/{KTT}/missing_component_count"] == 1.5  # per episode, as the seed
    assert metrics[f"comp_eval/{PK}/term_mean/robot_fallen"] == 0.5
    assert metrics[f"comp_eval/{PK}/term_mean/robot_distance_ball"] == 1.0
    assert metrics[f"eval_comp/{KTT}/term_mean/success"] == 0.5 == metrics[f"comp_eval/{KTT}/success_rate"]
    assert metrics[f"comp_eval/{PK}/fallen_rate"] == 0.5 and f"eval_comp/{PK}/fallen_rate" not in metrics
    assert metrics[f"eval_comp/{KTT}/goal_scored_mean"] == 0.0  # the seed's six terms, 0 when absent
    assert f"comp_eval/{KTT}/term_mean/goal_scored" not in metrics  # diagnostic terms follow the task family


def test_learning_curve_series_and_png() -> None:
    rows = [{"timestep": 10, "train/loss": 1.0},
            {"timestep": 100, "comp_eval/kick_to_target": -0.3, "eval/kick_to_target": -9.0},
            {"timestep": 200, "comp_eval/kick_to_target": 0.4}]
    assert eval_series(rows) == ("comp_eval", {KTT: [(100, -0.3), (200, 0.4)]})
    legacy_only = [{"timestep": 5, "eval/goalie_penalty_kick": 1.0}]
    assert eval_series(legacy_only) == ("eval", {PK: [(5, 1.0)]})
    assert render_learning_curve(rows[:1]) is None
    assert render_learning_curve(rows).startswith(b"\x89PNG")


def test_read_metrics_skips_a_line_a_killed_run_left_unfinished(tmp_path) -> None:
    from scoring.curves import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"timestep": 1, "a": 1.0}\n\n{"timestep": 2, "a": 2.0}\n{"timestep": 3, "a"')
    assert read_metrics(path) == [{"timestep": 1, "a": 1.0}, {"timestep": 2, "a": 2.0}]
    assert read_metrics(tmp_path / "missing.jsonl") == []
