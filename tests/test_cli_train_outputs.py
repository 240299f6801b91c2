"""train.py's evaluation outputs on the soccer tasks: seed metric keys, best-model files per score and task,
the learning curve, the end-of-run summary, --vecnormalize-path (read, never written) and the bad input of
those flags. Episodes are cut at 100 steps to stay quick."""

from __future__ import annotations

import json

import numpy as np
import pytest

import train
from envs.preprocess import OBS_DIM
from rlcore.cliutil import run_cli

TINY = ["--algo", "td3", "--net-arch", "16,16", "--total-timesteps", "240", "--learning-starts", "100",
        "--eval-freq", "120", "--eval-episodes", "1", "--eval-seeds", "0", "--max-episode-steps", "100"]


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_single_task_run_keeps_every_best_and_draws_the_curve(tmp_path, capsys) -> None:
    run = tmp_path / "ktt"
    assert run_cli(train.main, [*TINY, "--tasks", "kick_to_target", "--n-envs", "1", "--save-dir", str(run)]) == 0
    out = capsys.readouterr().out
    for name in ("best_model_competition.zip", "best_model.zip", "best_model_ktt.zip", "final_model.zip",
                 "learning_curve.png", "checkpoint.pt"):
        assert (run / name).is_file(), name
    for folder in ("submission_best", "submission_best_legacy", "submission_best_ktt", "submission_final"):
        assert (run / folder / "model.zip").is_file() and (run / folder / "meta.json").is_file(), folder
    assert (run / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    evals = [m for m in _metrics(run) if "comp_eval/C_overall" in m]
    assert [m["timestep"] for m in evals] == [120, 240]  # periodic, then the final evaluation
    last = evals[-1]
    for key in ("comp_eval/kick_to_target", "comp_eval/C_mean", "eval_comp/comp_total_sum",
                "eval_comp/kick_to_target/comp_total", "eval_comp/kick_to_target/comp_success",
                "comp_eval/kick_to_target/term_mean/distance", "comp_eval/kick_to_target/success_rate",
                "eval/S_overall", "eval/kick_to_target", "eval/ep_len_mean", "eval/best_S_overall",
                "eval_comp/best_comp_total_sum"):
        assert key in last, key
    assert last["eval_comp/best_comp_total_sum"] == max(m["comp_eval/C_overall"] for m in evals)
    best = json.loads((run / "best_model_ktt.meta.json").read_text())
    assert best["evaluation"]["comp_eval/C_overall"] == last["eval_comp/best_comp_total_sum"]
    summary = out[out.index("== summary =="):]
    assert "best comp_eval/C_overall=" in summary and "best_model_ktt.zip" in summary
    assert "learning_curve.png" in summary and "--resume-model" in summary


def test_legacy_only_and_competition_only_runs(tmp_path) -> None:
    legacy, comp = tmp_path / "legacy", tmp_path / "comp"
    base = [*TINY, "--tasks", "goalie_penalty_kick", "--n-envs", "1"]
    assert run_cli(train.main, [*base, "--legacy-only-eval", "--save-dir", str(legacy)]) == 0
    assert run_cli(train.main, [*base, "--competition-only-eval", "--save-dir", str(comp)]) == 0
    assert (legacy / "best_model.zip").is_file() and (legacy / "best_model_gpk.zip").is_file()
    assert not (legacy / "best_model_competition.zip").exists()
    assert not any(k.startswith(("comp_eval/", "eval_comp/")) for m in _metrics(legacy) for k in m)
    assert (comp / "best_model_competition.zip").is_file() and (comp / "best_model_gpk.zip").is_file()
    assert not (comp / "best_model.zip").exists()
    assert not any(k.startswith("eval/") for m in _metrics(comp) for k in m)


def test_vecnormalize_path_is_read_and_never_written(tmp_path, capsys) -> None:
    stats = tmp_path / "stats.json"
    mean = np.linspace(-1.0, 1.0, OBS_DIM)
    stats.write_text(json.dumps({"mean": mean.tolist(), "var": [4.0] * OBS_DIM, "count": 1e9}))
    before = stats.read_bytes()
    run = tmp_path / "run"
    argv = [*TINY, "--tasks", "kick_to_target", "--n-envs", "1", "--normalize-obs", "--vecnormalize-path",
            str(stats), "--save-dir", str(run)]
    assert run_cli(train.main, argv) == 0
    assert stats.read_bytes() == before
    saved = json.loads((run / "final_model.meta.json").read_text())["normalizer"]
    assert saved["count"] == 1e9 + 240  # started from the file's statistics, then kept updating
    np.testing.assert_allclose(saved["mean"], mean, atol=1e-5)
    assert "normaliser starts from" in capsys.readouterr().out


def test_bad_eval_and_normaliser_flags_write_nothing(tmp_path, capsys) -> None:
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"mean": [0.0] * 5, "var": [1.0] * 5, "count": 10}))
    cases = [
        (["--competition-only-eval", "--legacy-only-eval"], "mutually exclusive"),
        (["--vecnormalize-path", str(stats)], "needs --normalize-obs"),
        (["--normalize-obs", "--vecnormalize-path", str(tmp_path / "missing.pkl")], "no such file"),
        (["--normalize-obs", "--vecnormalize-path", str(stats)], "5-dim observations"),
        (["--bc-anchor-coef", "5"], "needs a warm-started actor"),
        (["--max-episode-steps", "0"], "must be > 0"),
    ]
    for argv, message in cases:
        assert run_cli(train.main, [*argv, "--save-dir", str(tmp_path / "x")]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x").exists()


SEED_FLAGS = """--algo --total-timesteps --n-envs --seed --device --net-arch --lr --tau --ent-coef --ent-coef-auto
--ent-coef-min --action-noise-sigma --buffer-size --batch-size --learning-starts --eval-episodes --eval-seeds
--eval-seeds-random --eval-freq --bc-weights --freeze-bc-layers --freeze-until-step --bc-replay-dataset
--bc-replay-fraction --resume-model --hf-token --hf-home --macro-reward-bonus --macro-reward-radius
--macro-reward-alignment-threshold --macro-reward-cap --allow-macro-bonus-with-competition --normalize-obs
--vecnormalize-path --competition-only-eval --legacy-only-eval --task-weights --tasks --reward-profile --save-dir
--steps-weight --action-mode --action-repeat --vec-env --n-steps --n-epochs --gae-lambda --clip-range --env-id
--config""".split()
"""The seed's train_multitask.py flags (docs/seed_pipeline.md) plus the ones the workflow issue adds: tooling passes
them, they must stay."""


def test_help_lists_every_workflow_flag_in_groups(capsys) -> None:
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    missing = [flag for flag in SEED_FLAGS if f"  {flag}" not in text]
    assert not missing, missing
    for group in ("run:", "algorithm", "behaviour cloning warm start:", "soccer tasks", "evaluation:"):
        assert group in text
