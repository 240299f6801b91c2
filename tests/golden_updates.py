"""Golden training traces: what TD3, SAC and PPO compute in their first updates, recorded before a refactor.

For each algorithm on Pendulum-v1 and on kick_to_target (the fast simulator, torque mode), a fixed-seed CPU run
through the real Runner (env, replay or rollout buffer, normaliser, sampling) records the metrics of the first
20 updates (TD3/SAC: gradient steps; PPO: rollouts) and the deterministic actions on 50 fixed observations
afterwards, on one torch thread. tests/test_golden_updates.py compares a fresh run with
tests/golden_updates.json: exactly on the CPU model that recorded it, within float rounding elsewhere (other
CPUs take other matrix-product kernels).

    python -m tests.golden_updates            # rewrite tests/golden_updates.json (only before a refactor)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from rlcore.algos import build_algorithm
from rlcore.config import BufferConfig, NetConfig, ObsNormConfig, PPOConfig, SACConfig, TD3Config
from rlcore.runner import RunConfig, Runner

GOLDEN_FILE = Path(__file__).with_name("golden_updates.json")
UPDATES = 20
PROBES = 50
ALGOS = ("td3", "sac", "ppo")
ENVS = ("Pendulum-v1", "kick_to_target")
NET = NetConfig(net_arch=(32, 32))


def cpu_model() -> str:
    """The CPU's model name (exact comparison only on the machine kind that recorded the traces)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _config(algo: str):
    norm = ObsNormConfig(enabled=True)
    if algo == "ppo":
        return PPOConfig(net=NET, obs_norm=norm, n_steps=16, batch_size=8, n_epochs=2)
    buffer = BufferConfig(buffer_size=1000, batch_size=32, learning_starts=64)
    return (TD3Config if algo == "td3" else SACConfig)(net=NET, obs_norm=norm, buffer=buffer)


def _env(name: str):
    if name == "Pendulum-v1":
        from rlcore.gym_env import make_gym_vec_env
        return make_gym_vec_env(name, 1)
    from envs.factory import make_vec_env
    return make_vec_env([name], seed=0, sim="fast")


def trace(algo_name: str, env_name: str) -> dict:
    """{"metrics": [per-update {name: value}], "actions": [[...]] on the probe observations} of one fixed run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a product's rounding depends on how many threads split it (other tests change it)
    try:
        return _trace(algo_name, env_name)
    finally:
        torch.set_num_threads(threads)


def _trace(algo_name: str, env_name: str) -> dict:
    torch.manual_seed(0)
    np.random.seed(0)
    env = _env(env_name)
    obs_dim = env.single_observation_space.shape[0]
    algo = build_algorithm(algo_name, obs_dim, env.single_action_space.low, env.single_action_space.high,
                           _config(algo_name))
    metrics: list[dict[str, float]] = []
    update = algo.update

    def recording_update(*args, **kwargs):
        out = update(*args, **kwargs)
        if len(metrics) < UPDATES:
            metrics.append({k: float(v) for k, v in sorted(out.items())})
        return out

    algo.update = recording_update
    per_update = 16 if algo_name == "ppo" else 1
    warmup = 0 if algo_name == "ppo" else 64
    try:
        Runner(algo, env, RunConfig(total_timesteps=warmup + UPDATES * per_update, seed=0,
                                    log_interval=10_000)).train()
    finally:
        env.close()
    probes = np.random.default_rng(1).normal(0.0, 1.0, (PROBES, obs_dim)).astype(np.float32)
    actions = algo.policy.predict(probes, deterministic=True)
    return {"metrics": metrics, "actions": np.asarray(actions, np.float64).tolist()}


def all_traces() -> dict[str, dict]:
    return {f"{algo}/{env}": trace(algo, env) for algo in ALGOS for env in ENVS}


def main() -> int:
    document = {"cpu_model": cpu_model(), "torch": torch.__version__, "traces": all_traces()}
    GOLDEN_FILE.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {GOLDEN_FILE} ({len(document['traces'])} traces on {document['cpu_model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
