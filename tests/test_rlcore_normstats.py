"""Reading normaliser statistics for --vecnormalize-path: our JSON files and a real SB3 vecnormalize.pkl
(read without SB3's code), and the files that must be refused."""

import json
import os
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.config import ObsNormConfig
from rlcore.normalizer import RunningNormalizer
from rlcore.normstats import read_normalizer_stats

STATS = {"mean": [1.0, -2.0], "var": [4.0, 0.25], "count": 7.0}


def test_json_stats_bare_and_inside_a_meta_file(tmp_path) -> None:
    bare, meta = tmp_path / "stats.json", tmp_path / "final_model.meta.json"
    bare.write_text(json.dumps(STATS))
    meta.write_text(json.dumps({"algo": "td3", "normalizer": {**STATS, "clip": 5.0, "epsilon": 1e-6}}))
    assert read_normalizer_stats(bare) == {"enabled": True, "clip": 10.0, "epsilon": 1e-8, **STATS}
    from_meta = read_normalizer_stats(meta)
    assert from_meta["clip"] == 5.0 and from_meta["epsilon"] == 1e-6 and from_meta["mean"] == STATS["mean"]
    normalizer = RunningNormalizer((2,), ObsNormConfig(enabled=False))
    normalizer.load_stats(read_normalizer_stats(bare))
    # (x - mean) / sqrt(var + eps): (3 - 1) / 2 = 1, (-1.5 + 2) / 0.5 = 1
    out = normalizer(torch.tensor([[3.0, -1.5]]))
    np.testing.assert_allclose(out.numpy(), [[1.0, 1.0]], rtol=1e-6)


def test_sb3_vecnormalize_pickle(tmp_path) -> None:
    vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    venv = vec_env.VecNormalize(vec_env.DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_reward=False,
                                clip_obs=7.0)
    venv.seed(0)
    venv.reset()
    venv.action_space.seed(0)
    for _ in range(30):
        venv.step(np.array([venv.action_space.sample()]))
    path = tmp_path / "vecnormalize.pkl"
    venv.save(str(path))
    stats = read_normalizer_stats(path)
    np.testing.assert_allclose(stats["mean"], venv.obs_rms.mean)
    np.testing.assert_allclose(stats["var"], venv.obs_rms.var)
    assert stats["count"] == pytest.approx(venv.obs_rms.count) and stats["clip"] == 7.0


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refuses_foreign_pickles_and_malformed_files(tmp_path) -> None:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ValueError, match="refusing posix.system"):
        read_normalizer_stats(evil)
    cases = {"missing.json": None, "nostats.json": {"algo": "td3"}, "shape.json": {**STATS, "var": [1.0]},
             "negative.json": {**STATS, "var": [1.0, -1.0]}, "count.json": {**STATS, "count": 0}}
    for name, document in cases.items():
        if document is not None:
            (tmp_path / name).write_text(json.dumps(document))
        with pytest.raises(ValueError):
            read_normalizer_stats(tmp_path / name)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="VecNormalize"):
        read_normalizer_stats(tmp_path / "junk.pkl")
