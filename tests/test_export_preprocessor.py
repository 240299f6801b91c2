"""The generated submission Preprocessor, loaded the way the sai_rl client loads it, against our own
preprocessing and normaliser on recorded env steps, in every calling shape the platform uses."""

from __future__ import annotations

import ast
import builtins

import numpy as np
import pytest
import torch

import submission.preprocessor as generator
from envs.preprocess import OBS_DIM, preprocess
from envs.tasks import TASKS
from rlcore.config import ObsNormConfig
from rlcore.normalizer import RunningNormalizer
from submission import PLATFORM_IMPORT_LINE, load_like_platform, preprocessor_source
from tests.platform_client import platform_env, platform_vector_env


@pytest.fixture(scope="module")
def normalizer() -> RunningNormalizer:
    """Statistics with every kind of entry: large and tiny variances (clipping active), shifted means."""
    norm = RunningNormalizer((OBS_DIM,), ObsNormConfig(enabled=True))
    rng = np.random.default_rng(0)
    scale = np.exp(rng.uniform(-6, 2, OBS_DIM))
    for _ in range(5):
        norm.update(torch.as_tensor(rng.normal(1.0, 1.0, (64, OBS_DIM)) * scale))
    return norm


@pytest.fixture(scope="module")
def steps() -> list[tuple[np.ndarray, dict]]:
    """(raw obs, info) of the raw platform envs: at reset (no reward_terms) and after random-torque steps."""
    out = []
    rng = np.random.default_rng(1)
    for task in TASKS:
        env = platform_env(task.name)
        obs, info = env.reset(seed=7)
        out.append((obs, info))
        for i in range(40):
            obs, _, _, _, info = env.step(rng.uniform(-30, 30, 12).astype(np.float32))
            if i % 20 == 19:
                out.append((obs, info))
        env.close()
    return out


def training_input(obs: np.ndarray, info: dict, normalizer: RunningNormalizer | None) -> np.ndarray:
    """What the policy saw in training: envs.preprocess, then the torch normaliser."""
    x = preprocess(obs, info)
    return x if normalizer is None else normalizer(torch.as_tensor(x)).numpy()


def row(info: dict, i: int) -> dict:
    """Row i of a batched info dict, as an unbatched info (masks and nested dicts dropped)."""
    return {k: v[i] for k, v in info.items() if not k.startswith("_") and not isinstance(v, dict)}


def test_generated_file_survives_the_platform_loader(normalizer):
    source = preprocessor_source(normalizer.stats())
    assert PLATFORM_IMPORT_LINE.sub("", source) == source  # nothing for the client to strip
    first = next(line for line in source.splitlines() if line.startswith(("class ", "def ")))
    assert first == "class Preprocessor:"
    tree = ast.parse(source)
    assert [type(node) for node in tree.body] == [ast.ClassDef]  # statistics and helpers live in the class
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Import, ast.ImportFrom, ast.AnnAssign))
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and all(a.annotation is None for a in node.args.args)
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    assert loaded - local - set(dir(builtins)) == {"np"}  # the only global the client provides that it uses
    pre = load_like_platform(source, env=object())
    assert type(pre).__name__ == "Preprocessor"


@pytest.mark.parametrize("normalized", [True, False])
def test_unbatched_and_one_row_calls_equal_training_input(normalized, normalizer, steps):
    norm = normalizer if normalized else None
    pre = load_like_platform(preprocessor_source(norm.stats() if norm else None))
    for obs, info in steps:
        expected = training_input(obs, info, norm)
        single = pre.modify_state(obs, info)  # SAIClient.watch: (D,) obs, unbatched info
        assert single.shape == (OBS_DIM,) and single.dtype == np.float32
        np.testing.assert_array_equal(single, expected)
        one = pre.modify_state(obs[None], info)  # the PyTorch save path: (1, D) obs, unbatched info
        assert one.shape == (1, OBS_DIM) and one.dtype == np.float32
        np.testing.assert_array_equal(one[0], expected)
    if normalized:
        assert np.any(np.abs(expected) == normalizer.clip)  # the clip is part of what is compared


def test_async_vector_batches_with_an_ended_env(normalizer):
    """Batches as run_benchmark makes them: N changes between batches, reset info has no reward_terms,
    and the env that ended first keeps being stepped; one instance serves all (it is stateless)."""
    pre = load_like_platform(preprocessor_source(normalizer.stats()))
    plain = load_like_platform(preprocessor_source(None))
    rng = np.random.default_rng(2)
    for task, n in ((TASKS[0], 2), (TASKS[2], 1), (TASKS[1], 2)):
        envs = platform_vector_env(task.name, n, [3] + [None] * (n - 1))
        try:
            obs, info = envs.reset(seed=list(range(10, 10 + n)))
            assert "reward_terms" not in info and info["_robot_quat"].all()
            for step in range(6):
                out = pre.modify_state(obs, info)
                assert out.shape == (n, OBS_DIM) and out.dtype == np.float32
                for i in range(n):
                    np.testing.assert_array_equal(out[i], training_input(obs[i], row(info, i), normalizer))
                one_hot = plain.modify_state(obs, info)[:, 86:]
                np.testing.assert_array_equal(one_hot, np.tile(task.one_hot, (n, 1)))  # ours, from the width:
                assert not np.array_equal(one_hot, info["task_index"])  # not the platform's task_index
                obs, _, terminated, truncated, info = envs.step(rng.uniform(-20, 20, (n, 12)).astype(np.float32))
                assert (terminated | truncated)[0] == (step >= 2)  # env 0 ended at its 3rd step, stepped on
        finally:
            envs.close()


def test_non_finite_rows_give_finite_output_and_leave_other_rows_alone(normalizer, steps):
    pre = load_like_platform(preprocessor_source(normalizer.stats()))
    (obs0, info0), (obs1, info1) = steps[1], steps[2]  # two steps of the same task
    obs = np.stack([obs0, obs1, obs0])
    info = {k: np.stack([np.asarray(info0[k]), np.asarray(info1[k]), np.asarray(info0[k])]) for k in info0
            if not isinstance(info0[k], dict) and k != "task_index"}
    obs[1, :5] = np.nan
    info["robot_quat"][1] = np.nan
    info["ball_xpos_rel_robot"][1] = [np.inf, -np.inf, 1e300]
    out = pre.modify_state(obs, info)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], training_input(obs0, info0, normalizer))
    np.testing.assert_array_equal(out[2], out[0])


def test_bad_inputs_and_layouts_raise(normalizer, steps, monkeypatch):
    pre = load_like_platform(preprocessor_source(None))
    obs, info = steps[0]
    with pytest.raises(ValueError, match="width 40"):
        pre.modify_state(np.zeros(40, np.float32), info)
    with pytest.raises(ValueError, match="statistics of width 3"):
        preprocessor_source({**normalizer.stats(), "mean": [0.0] * 3, "var": [1.0] * 3})
    monkeypatch.setattr(generator, "OBS_LAYOUT", (*generator.OBS_LAYOUT, ("ball_spin", 3)))
    with pytest.raises(ValueError, match="does not know how to build ball_spin"):
        preprocessor_source(None)
