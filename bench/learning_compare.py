"""Learning side by side: our engine vs Stable-Baselines3, identical hyper-parameters, several seeds.

Each (suite, framework, seed) trains from scratch and is scored by the SAME evaluation: the mean
deterministic return over 10 episodes with reset seeds 1000..1009. One JSON line per run is appended
to --out as soon as it finishes (so a long sweep keeps its partial results); the summary table is
printed at the end, or alone with --summary.

    python bench/learning_compare.py --suites pendulum_sac pendulum_td3 --seeds 0 1 2 --out runs/compare.jsonl
    python bench/learning_compare.py --frameworks ours_bf16 --suites pendulum_sac   # our engine in bf16

`ours_bf16` is our engine with `precision="bf16"` (TD3/SAC suites only), everything else the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from rlcore.algos import build_algorithm
from rlcore.config import BufferConfig, NetConfig, PPOConfig, SACConfig, TD3Config
from rlcore.gym_env import evaluate_returns, make_gym_vec_env
from rlcore.runner import RunConfig, Runner, check_box_spaces

# suite -> (env id, algo, timesteps, our config, SB3 kwargs); both sides spell the same numbers
SUITES = {
    "pendulum_sac": ("Pendulum-v1", "sac", 15_000, SACConfig(), {}),
    "pendulum_td3": ("Pendulum-v1", "td3", 15_000,
                     TD3Config(net=NetConfig(net_arch=(256, 256))),
                     {"policy_kwargs": {"net_arch": [256, 256]}, "learning_rate": 1e-3, "noise_sigma": 0.1}),
    "invpend_ppo": ("InvertedPendulum-v5", "ppo", 100_000, PPOConfig(), {"ent_coef": 0.01}),
    "halfcheetah_sac": ("HalfCheetah-v5", "sac", 50_000, SACConfig(buffer=BufferConfig(learning_starts=10_000)),
                        {"learning_starts": 10_000}),
}
EVAL_SEED, EVAL_EPISODES = 1000, 10


def run_ours(suite: str, seed: int, precision: str = "fp32") -> float:
    env_id, algo, steps, cfg, _ = SUITES[suite]
    if precision != "fp32":
        cfg = dataclasses.replace(cfg, precision=precision)
    torch.manual_seed(seed)
    np.random.seed(seed)
    env = make_gym_vec_env(env_id, 1)
    obs_dim, low, high = check_box_spaces(env)
    learner = build_algorithm(algo, obs_dim, low, high, cfg)
    Runner(learner, env, RunConfig(total_timesteps=steps, seed=seed, log_interval=steps)).train()
    env.close()
    return _score(env_id, learner.policy.predict)


def run_sb3(suite: str, seed: int) -> float:
    import stable_baselines3 as sb3
    from stable_baselines3.common.noise import NormalActionNoise

    env_id, algo, steps, _, kwargs = SUITES[suite]
    kwargs = dict(kwargs)
    import gymnasium as gym

    env = gym.make(env_id)
    sigma = kwargs.pop("noise_sigma", None)
    if sigma is not None:
        scale = (env.action_space.high - env.action_space.low) / 2
        kwargs["action_noise"] = NormalActionNoise(np.zeros_like(scale), sigma * scale)
    cls = {"sac": sb3.SAC, "td3": sb3.TD3, "ppo": sb3.PPO}[algo]
    model = cls("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    model.learn(steps)
    env.close()
    return _score(env_id, lambda obs: model.predict(obs, deterministic=True)[0])


def _score(env_id: str, act) -> float:
    records = evaluate_returns(env_id, act, EVAL_EPISODES, seed=EVAL_SEED)
    return float(np.mean([r["return"] for r in records]))


def summary(path: Path) -> str:
    rows: dict[tuple[str, str], list[float]] = {}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        rows.setdefault((rec["suite"], rec["framework"]), []).append(rec["score"])
    lines = [f"{'suite':<18}{'framework':<10}{'seeds':>6}{'mean':>10}{'std':>9}  scores"]
    for (suite, framework), scores in sorted(rows.items()):
        lines.append(f"{suite:<18}{framework:<10}{len(scores):>6}{np.mean(scores):>10.1f}{np.std(scores):>9.1f}  "
                     + ", ".join(f"{s:.1f}" for s in scores))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", nargs="+", default=list(SUITES), choices=list(SUITES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frameworks", nargs="+", default=["ours", "sb3"], choices=["ours", "ours_bf16", "sb3"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--out", type=Path, default=Path("runs/learning_compare.jsonl"))
    parser.add_argument("--summary", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    if "ours_bf16" in args.frameworks and any(SUITES[s][1] == "ppo" for s in args.suites):
        parser.error("ours_bf16 applies to the TD3/SAC suites")
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.summary:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for suite in args.suites:
            for seed in args.seeds:
                for framework in args.frameworks:
                    start = time.time()
                    if framework == "sb3":
                        score = run_sb3(suite, seed)
                    else:
                        score = run_ours(suite, seed, "bf16" if framework == "ours_bf16" else "fp32")
                    rec = {"suite": suite, "framework": framework, "seed": seed, "score": score,
                           "seconds": round(time.time() - start, 1)}
                    with args.out.open("a") as handle:
                        handle.write(json.dumps(rec) + "\n")
                    print(json.dumps(rec), flush=True)
    print(summary(args.out))


if __name__ == "__main__":
    main()
