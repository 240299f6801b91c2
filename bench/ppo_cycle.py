"""PPO time per 2048-step rollout + update cycle, ours vs Stable-Baselines3, same process, same settings.

Both run SB3's default PPO (n_steps 2048, batch 64, 10 epochs, [64, 64] Tanh) on the same env for
`--cycles` cycles after one burn-in cycle; each side's cycle time is measured between the starts of
consecutive rollouts (SB3: a callback; ours: the runner's log records at every 2048 timesteps). The
sides take turns `--repeats` times, as the machine's speed drifts over seconds on shared hardware.

    python bench/ppo_cycle.py --env-id Pendulum-v1 --cycles 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rlcore.algos import build_algorithm
from rlcore.cliutil import UsageError, resolve_device
from rlcore.config import PPOConfig
from rlcore.gym_env import make_gym_vec_env
from rlcore.logger import RunLogger
from rlcore.runner import RunConfig, Runner, check_box_spaces

N_STEPS = 2048


def ours_cycle_seconds(env_id: str, cycles: int, device: str = "cpu") -> float:
    env = make_gym_vec_env(env_id, 1)
    obs_dim, low, high = check_box_spaces(env)
    learner = build_algorithm("ppo", obs_dim, low, high, PPOConfig(n_steps=N_STEPS, ent_coef=0.0), device)
    with tempfile.TemporaryDirectory() as tmp:
        logger = RunLogger(Path(tmp), tensorboard=False, verbose=False)
        run = RunConfig(total_timesteps=N_STEPS * (cycles + 1), log_interval=N_STEPS)
        Runner(learner, env, run, logger=logger).train()
        times = [json.loads(line)["time"] for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    env.close()
    return float(np.mean(np.diff(times)))


def sb3_cycle_seconds(env_id: str, cycles: int, device: str = "cpu") -> float:
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class Stamp(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.starts: list[float] = []

        def _on_rollout_start(self) -> None:
            self.starts.append(time.perf_counter())

        def _on_step(self) -> bool:
            return True

    stamp = Stamp()
    model = PPO("MlpPolicy", gym.make(env_id), n_steps=N_STEPS, device=device, seed=0)
    model.learn(N_STEPS * (cycles + 2), callback=stamp)
    return float(np.mean(np.diff(stamp.starts[1:cycles + 2])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-id", default="Pendulum-v1")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="torch device for both sides: cpu, cuda, cuda:1, auto")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per side, taking turns (the ratio is the median over the pairs)")
    args = parser.parse_args()
    try:
        args.device = str(resolve_device(args.device))
    except UsageError as exc:
        parser.error(str(exc))
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, {args.env_id}, "
          f"n_steps {N_STEPS}, batch 64, 10 epochs, [64, 64] Tanh, mean of {args.cycles} cycles after burn-in per run")
    pairs = []
    for repeat in range(args.repeats):
        sb3 = sb3_cycle_seconds(args.env_id, args.cycles, args.device)
        ours = ours_cycle_seconds(args.env_id, args.cycles, args.device)
        pairs.append((ours, sb3))
        print(f"run {repeat + 1}: ours {ours:6.3f} s | SB3 {sb3:6.3f} s | speed-up {sb3 / ours:5.2f}x", flush=True)
    ours, sb3 = np.median(pairs, axis=0)
    speed_ups = [s / o for o, s in pairs]
    print(f"PPO cycle: ours {ours:6.3f} s | SB3 {sb3:6.3f} s | speed-up {np.median(speed_ups):5.2f}x "
          f"(median of {len(pairs)} runs, range {min(speed_ups):.2f}-{max(speed_ups):.2f})")


if __name__ == "__main__":
    main()
