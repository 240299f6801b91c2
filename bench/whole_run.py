"""Whole training runs, ours (train.py) vs Stable-Baselines3, same settings, as separate processes taking turns.

Each suite is one command line for train.py and the SB3 script doing the same run (same algorithm, env,
network, batch, warm-up, buffer, steps). Every process is timed from start to exit (imports, env creation,
training; train.py's final evaluation and model export included, so the comparison is conservative for us);
the sides take turns, `--repeats` times, and the best time of each counts (the machine is shared: the best
run is the one least disturbed). Our runs go once per `--precisions` entry.

    python bench/whole_run.py --suites pendulum_sac goalie_td3 --repeats 2 --threads 1

Suites:
  pendulum_sac  SAC on Pendulum-v1, 6000 steps, 1000 random warm-up, batch 256, [256, 256]
  goalie_td3    TD3 on goalie_penalty_kick (torque, competition reward), 1 env, [256, 256, 128], batch 256,
                lr 3e-4, buffer 500k, 1000 warm-up + 3000 updating steps, 500-step episodes, both sides on the
                same simulator: the official sai_mujoco env (default), or with --goalie-sim fast our twin of it
                (train.py's default for the soccer tasks; equal to sai_mujoco step for step)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SB3_PENDULUM = """
import gymnasium as gym
from stable_baselines3 import SAC
model = SAC("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=1000, batch_size=256,
            policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu")
model.learn(6000)
"""

SB3_GOALIE = """
import numpy as np
from stable_baselines3 import TD3
from stable_baselines3.common.noise import NormalActionNoise
from envs.factory import make_env
env = make_env("goalie_penalty_kick", seed=0, max_episode_steps=500, sim="{sim}")()
noise = NormalActionNoise(np.zeros(12), 0.1 * np.ones(12))
model = TD3("MlpPolicy", env, learning_rate=3e-4, buffer_size=500_000, learning_starts=1000, batch_size=256,
            policy_kwargs={"net_arch": [256, 256, 128]}, action_noise=noise, seed=0, device="cpu")
model.learn(4000)
"""


def ours_pendulum(precision: str, save_dir: str, sim: str) -> list[str]:
    return ["train.py", "--env-id", "Pendulum-v1", "--algo", "sac", "--total-timesteps", "6000", "--learning-starts",
            "1000", "--batch-size", "256", "--net-arch", "256,256", "--precision", precision, "--device", "cpu",
            "--eval-episodes", "1", "--save-dir", save_dir]


def ours_goalie(precision: str, save_dir: str, sim: str) -> list[str]:
    return ["train.py", "--algo", "td3", "--tasks", "goalie_penalty_kick", "--n-envs", "1", "--net-arch", "256,256,128",
            "--batch-size", "256", "--lr", "3e-4", "--buffer-size", "500000", "--learning-starts", "1000",
            "--action-noise-sigma", "0.1", "--total-timesteps", "4000", "--max-episode-steps", "500", "--sim", sim,
            "--eval-episodes", "1", "--eval-seeds", "0", "--precision", precision, "--device", "cpu",
            "--save-dir", save_dir]


SUITES = {"pendulum_sac": (ours_pendulum, SB3_PENDULUM), "goalie_td3": (ours_goalie, SB3_GOALIE)}
"""suite -> (our argv for a precision, save folder and goalie simulator; SB3's script, `{sim}` its simulator)"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES))
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side (taking turns); the best counts")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of every process (0 = unset)")
    parser.add_argument("--goalie-sim", choices=["official", "fast"], default="official",
                        help="simulator of both sides' goalie runs")
    args = parser.parse_args()
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    print(f"{args.repeats} turns per side, OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}; best whole-process "
          "seconds (all runs)")
    with tempfile.TemporaryDirectory() as tmp:
        for suite in args.suites:
            ours, sb3 = SUITES[suite]
            times: dict[str, list[float]] = {f"ours {p}": [] for p in args.precisions} | {"sb3": []}
            for turn in range(args.repeats):
                for p in args.precisions:
                    times[f"ours {p}"].append(timed(ours(p, f"{tmp}/{suite}_{p}_{turn}", args.goalie_sim), env))
                times["sb3"].append(timed(["-c", sb3.replace("{sim}", args.goalie_sim)], env))
            best_sb3 = min(times["sb3"])
            parts = [f"SB3 {best_sb3:6.1f} s ({', '.join(f'{t:.1f}' for t in times['sb3'])})"]
            for p in args.precisions:
                best = min(times[f"ours {p}"])
                parts.append(f"ours {p} {best:6.1f} s ({', '.join(f'{t:.1f}' for t in times[f'ours {p}'])}) "
                             f"= {best_sb3 / best:4.2f}x faster")
            print(f"{suite}: " + " | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
