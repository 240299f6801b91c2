"""GPU-only: updates make no host sync (STYLE rule 20). Skipped on machines without CUDA (CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcore.algos import build_algorithm
from rlcore.buffers import ReplayBuffer, RolloutBuffer
from rlcore.config import NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
OBS, ACT = 89, 12
LOW, HIGH = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_offpolicy_update_has_no_host_sync(algo: str) -> None:
    device = torch.device("cuda")
    cfg_cls = TD3Config if algo == "td3" else SACConfig
    learner = build_algorithm(algo, OBS, LOW, HIGH, cfg_cls(net=NetConfig(net_arch=(64, 64)),
                                                             obs_norm=ObsNormConfig(enabled=True)), device)
    replay = ReplayBuffer(OBS, ACT, 1000, device, seed=0)
    replay.add(torch.randn(500, OBS, device=device), torch.rand(500, ACT, device=device) * 2 - 1,
               torch.randn(500, device=device), torch.randn(500, OBS, device=device),
               torch.zeros(500, device=device))
    learner.update(replay.sample(64).normalized(learner.normalizer))  # warm-up (lazy CUDA init may sync)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(4):
            learner.normalizer.update(torch.randn(8, OBS, device=device))
            learner.update(replay.sample(64).normalized(learner.normalizer))
            learner.explore(torch.randn(8, OBS, device=device))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_ppo_update_has_no_host_sync() -> None:
    device = torch.device("cuda")
    learner = build_algorithm("ppo", OBS, LOW, HIGH, PPOConfig(n_steps=16, batch_size=8, n_epochs=2), device)
    rollout = RolloutBuffer(16, 2, OBS, ACT, device, seed=0)
    for _ in range(16):
        policy_obs, actions = learner.explore(torch.randn(2, OBS, device=device))
        rollout.add(policy_obs, actions, torch.randn(2, device=device), torch.zeros(2, device=device))
    last_obs = torch.randn(2, OBS, device=device)
    learner.update(rollout, last_obs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        learner.explore(last_obs)
        learner.update(rollout, last_obs)
    finally:
        torch.cuda.set_sync_debug_mode("default")
