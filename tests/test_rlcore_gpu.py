"""GPU-only: where the training loop synchronises with the host (docs/design.md). Skipped without CUDA (CI).

The contract, counted with torch's sync debug mode (every blocking copy between host and device counts, as
do .item(), nonzero and the like):
* per environment step, the algorithm's own work makes NO sync: normaliser update, acting, buffer writes of
  device tensors, replay sampling and TD3/SAC updates (checked under "error");
* the runner's step crosses the host boundary a fixed number of times: the actions to the env (the one
  necessary device-to-host copy) and a blocking host-to-device copy per numpy array the env returned
  (OFFPOLICY_STEP_SYNCS, PPO_STEP_SYNCS; a truncated PPO step costs more, for its bootstrap, and is not
  counted here);
* per PPO update, exactly GAE_SYNCS: the GAE recursion runs in numpy (rlcore/buffers.py), so the rewards,
  values, episode ends and last values come to the host and the advantages go back; nothing else in the
  update syncs (target_kl, off by default, adds one per epoch).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from rlcore.algos import build_algorithm
from rlcore.buffers import Batch, ReplayBuffer, RolloutBuffer
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config
from rlcore.runner import RunConfig, Runner
from tests.scripted_env import script, scripted_vec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
OBS, ACT = 89, 12
LOW, HIGH = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)
GAE_SYNCS = 5
"""rewards, values, episode_ends, last_values to the host (4 copies); advantages back (1)."""
OFFPOLICY_STEP_SYNCS = 5
"""obs in, actions out, then rewards, true next obs and terminated in."""
PPO_STEP_SYNCS = 4
"""obs in, actions out, then rewards and episode ends in."""
PPO_ROLLOUT_END_SYNCS = 1 + GAE_SYNCS
"""The last observation in (for V(last obs)), then GAE."""
NO_END = script((10_000, "truncated"))
"""A scripted episode longer than any run here: no episode ends, so no truncation bootstrap."""


class SyncCounter:
    """Counts synchronising CUDA calls (torch's sync debug mode "warn") while active; `marks` snapshots."""

    def __enter__(self) -> SyncCounter:
        torch.cuda.synchronize()
        self._catch = warnings.catch_warnings(record=True)
        self._records = self._catch.__enter__()
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        return self

    @property
    def count(self) -> int:
        return sum("synchronizing" in str(w.message) for w in self._records)

    def __exit__(self, *exc) -> None:
        torch.cuda.set_sync_debug_mode("default")
        self._catch.__exit__(*exc)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_offpolicy_step_work_and_update_make_no_host_sync(algo: str) -> None:
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
            obs = torch.randn(8, OBS, device=device)
            learner.normalizer.update(obs)
            actions = learner.explore(obs)
            replay.add(obs, actions, torch.randn(8, device=device), torch.randn(8, OBS, device=device),
                       torch.zeros(8, device=device))
            learner.update(replay.sample(64).normalized(learner.normalizer))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_ppo_step_work_makes_no_sync_and_its_update_only_gaes() -> None:
    device = torch.device("cuda")
    learner = build_algorithm("ppo", OBS, LOW, HIGH, PPOConfig(n_steps=16, batch_size=8, n_epochs=2,
                                                               obs_norm=ObsNormConfig(enabled=True)), device)
    rollout = RolloutBuffer(16, 2, OBS, ACT, device, seed=0)

    def collect() -> None:
        rollout.reset()
        for _ in range(16):
            obs = torch.randn(2, OBS, device=device)
            learner.normalizer.update(obs)
            actions = learner.explore(obs)
            policy_obs = learner.normalizer(obs)
            rollout.add(policy_obs, actions, torch.randn(2, device=device), torch.zeros(2, device=device))

    last_obs = torch.randn(2, OBS, device=device)
    collect()
    rollout.finish(learner.normalizer(last_obs))
    learner.update(rollout)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        collect()
        rollout.finish(learner.normalizer(last_obs))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    with SyncCounter() as counter:
        learner.update(rollout)
    assert counter.count == GAE_SYNCS
    with SyncCounter() as counter:
        rollout.compute_returns_and_advantages(learner.value(last_obs), 0.99, 0.95)
    assert counter.count == GAE_SYNCS  # all of the update's syncs are GAE's


def _step_syncs(algo: str, cfg, total: int) -> list[int]:
    """Syncs between consecutive env.step calls of a runner on the scripted env (no episode ends)."""
    device = torch.device("cuda")
    learner = build_algorithm(algo, 3, -np.ones(1, np.float32), np.ones(1, np.float32), cfg, device)
    env = scripted_vec(NO_END, NO_END)
    marks: list[int] = []
    step = env.step
    with SyncCounter() as counter:
        env.step = lambda actions: marks.append(counter.count) or step(actions)
        Runner(learner, env, RunConfig(total_timesteps=total, log_interval=10**9)).train()
    env.close()
    return np.diff(marks).tolist()


def test_runner_step_syncs_are_the_stated_ones() -> None:
    td3 = TD3Config(net=NetConfig(net_arch=(16,)), obs_norm=ObsNormConfig(enabled=True),
                    buffer=BufferConfig(buffer_size=100, batch_size=4, learning_starts=8))
    diffs = _step_syncs("td3", td3, 40)  # random warm-up, then policy actions and one update per step
    assert diffs == [OFFPOLICY_STEP_SYNCS] * len(diffs) and len(diffs) == 19
    ppo = PPOConfig(net=NetConfig(net_arch=(16,)), obs_norm=ObsNormConfig(enabled=True), n_steps=5, batch_size=4,
                    n_epochs=2)
    diffs = _step_syncs("ppo", ppo, 30)  # 3 rollouts of 5 steps; the update falls between steps 5/6 and 10/11
    expected = [PPO_STEP_SYNCS] * 14
    expected[4] = expected[9] = PPO_STEP_SYNCS + PPO_ROLLOUT_END_SYNCS
    assert diffs == expected


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_cuda_graph_update_equals_the_eager_update(algo: str, precision: str) -> None:
    """The same batches from the same generator state: the graphed learner (warm-up, capture and replays of both
    variants: TD3's delayed and plain steps, SAC's actor start) ends where the eager one does, metrics included;
    once every variant is captured, an update makes no host sync."""
    device = torch.device("cuda")
    cfg_cls = TD3Config if algo == "td3" else SACConfig
    extra = {"policy_delay": 2} if algo == "td3" else {"actor_learning_starts": 5}
    g = torch.Generator(device=device).manual_seed(0)
    batches = [Batch(torch.randn(64, OBS, device=device, generator=g),
                     torch.rand(64, ACT, device=device, generator=g) * 2 - 1,
                     torch.randn(64, device=device, generator=g), torch.randn(64, OBS, device=device, generator=g),
                     (torch.rand(64, device=device, generator=g) < 0.1).float(), torch.zeros(64, device=device))
               for _ in range(24)]

    def train(cuda_graphs: bool):
        torch.manual_seed(0)
        torch.cuda.manual_seed(0)
        cfg = cfg_cls(net=NetConfig(net_arch=(64, 64)), precision=precision, cuda_graphs=cuda_graphs, **extra)
        learner = build_algorithm(algo, OBS, LOW, HIGH, cfg, device)
        outs = [learner.update(b) for b in batches[:20]]
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            outs += [learner.update(b) for b in batches[20:]]
        finally:
            torch.cuda.set_sync_debug_mode("default")
        params = [p for m in (learner.actor, learner.critic, learner.critic_target) for p in m.parameters()]
        return learner, params, outs

    eager, eager_params, eager_outs = train(False)
    graphed, graphed_params, graphed_outs = train(True)
    assert len(graphed.graphs._graphs) == 2  # both variants captured and replayed
    for a, b in zip(graphed_params, eager_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(graphed_outs, eager_outs, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    if algo == "sac":
        torch.testing.assert_close(graphed.log_alpha, eager.log_alpha, rtol=1e-4, atol=1e-6)
