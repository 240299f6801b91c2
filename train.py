"""Train TD3, SAC or PPO: on the soccer tasks (default) or on any gymnasium Box task (--env-id).

    python train.py --env-id Pendulum-v1 --algo sac --total-timesteps 15000 --seed 0 --save-dir runs/p

Flags left unset keep the algorithm config's defaults (rlcore/config.py, shown in --help).
The run's save dir receives checkpoint.pt (resumable with --resume-model), metrics.jsonl and
TensorBoard event files.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rlcore.algos import build_algorithm
from rlcore.checkpoint import checkpoint_config, load_checkpoint
from rlcore.cliutil import ArgumentParser, UsageError, parse_int_list, run_cli
from rlcore.config import CONFIGS, BufferConfig, NetConfig, ObsNormConfig, field_docs
from rlcore.gym_env import evaluate_returns, make_gym_vec_env
from rlcore.logger import RunLogger
from rlcore.metrics import EVAL_MEAN_LENGTH, EVAL_MEAN_RETURN
from rlcore.runner import RunConfig, Runner, check_box_spaces

_NET, _BUF, _NORM = field_docs(NetConfig), field_docs(BufferConfig), field_docs(ObsNormConfig)
_TD3, _SAC, _PPO = (field_docs(CONFIGS[a]) for a in ("td3", "sac", "ppo"))
_RUN = field_docs(RunConfig)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    run = parser.add_argument_group("run")
    run.add_argument("--algo", choices=sorted(CONFIGS), default="td3", help="algorithm (default td3)")
    run.add_argument("--env-id", help="train on this gymnasium env id instead of the soccer tasks")
    run.add_argument("--total-timesteps", type=int, default=None, help=_RUN["total_timesteps"] + " (default 1e6)")
    run.add_argument("--n-envs", type=int, default=1, help="parallel envs in the vector env (default 1)")
    run.add_argument("--vec-env", choices=["sync", "async"], default="sync",
                     help="gymnasium vector env kind (default sync: faster for 500 Hz envs)")
    run.add_argument("--seed", type=int, default=0, help=_RUN["seed"] + " (default 0)")
    run.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1 (default auto)")
    run.add_argument("--save-dir", default="runs/latest", help="output directory (default runs/latest)")
    run.add_argument("--resume-model", help="continue from a checkpoint.pt (counters, schedules, normaliser)")
    run.add_argument("--save-replay", action="store_true", help=_RUN["save_replay"])

    algo = parser.add_argument_group("algorithm (unset = the config default)")
    algo.add_argument("--net-arch", help="comma-separated hidden sizes, e.g. 256,256,128. " + _NET["net_arch"])
    algo.add_argument("--activation", help=_NET["activation"])
    algo.add_argument("--lr", type=float, help="learning rate (TD3 1e-3, SAC/PPO 3e-4)")
    algo.add_argument("--gamma", type=float, help=_TD3["gamma"])
    algo.add_argument("--tau", type=float, help=_TD3["tau"] + " (TD3/SAC)")
    algo.add_argument("--batch-size", type=int, help="minibatch size (TD3/SAC 256, PPO 64)")
    algo.add_argument("--buffer-size", type=int, help=_BUF["buffer_size"])
    algo.add_argument("--learning-starts", type=int, help=_BUF["learning_starts"])
    algo.add_argument("--action-noise-sigma", type=float, help="TD3: " + _TD3["exploration_noise"])
    algo.add_argument("--ent-coef", type=float, help="SAC: fixed alpha; PPO: " + _PPO["ent_coef"])
    algo.add_argument("--ent-coef-auto", action="store_true", help="SAC: tune alpha automatically (the default)")
    algo.add_argument("--ent-coef-min", type=float, help="SAC: " + _SAC["ent_coef_min"])
    algo.add_argument("--n-steps", type=int, help="PPO: " + _PPO["n_steps"])
    algo.add_argument("--n-epochs", type=int, help="PPO: " + _PPO["n_epochs"])
    algo.add_argument("--gae-lambda", type=float, help="PPO: " + _PPO["gae_lambda"])
    algo.add_argument("--clip-range", type=float, help="PPO: " + _PPO["clip_range"])
    algo.add_argument("--normalize-obs", action="store_true", help=_NORM["enabled"])

    ev = parser.add_argument_group("evaluation")
    ev.add_argument("--eval-freq", type=int, default=0, help=_RUN["eval_freq"])
    ev.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation (default 10)")
    ev.add_argument("--eval-seeds", default="0", help="comma-separated base reset seeds (default 0)")
    ev.add_argument("--log-interval", type=int, default=2000, help=_RUN["log_interval"])
    return parser


def algo_config(args, algo: str, base=None):
    """The algorithm config: `base` (or the defaults) with every flag the user set applied."""
    cfg = base if base is not None else CONFIGS[algo]()
    net, top = {}, {}
    if args.net_arch is not None:
        net["net_arch"] = parse_net_arch(args.net_arch)
    if args.activation is not None:
        net["activation"] = args.activation
    _check_algo_flags(args, algo)
    for flag, name in (("lr", "learning_rate"), ("gamma", "gamma"), ("tau", "tau"), ("n_steps", "n_steps"),
                       ("n_epochs", "n_epochs"), ("gae_lambda", "gae_lambda"), ("clip_range", "clip_range"),
                       ("action_noise_sigma", "exploration_noise"), ("ent_coef", "ent_coef"),
                       ("ent_coef_min", "ent_coef_min")):
        if getattr(args, flag) is not None:
            top[name] = getattr(args, flag)
    buffer = {}
    for flag in ("buffer_size", "learning_starts"):
        if getattr(args, flag) is not None:
            buffer[flag] = getattr(args, flag)
    if args.batch_size is not None:
        (top if algo == "ppo" else buffer)["batch_size"] = args.batch_size
    try:
        if net:
            top["net"] = dataclasses.replace(cfg.net, **net)
        if buffer:
            top["buffer"] = dataclasses.replace(cfg.buffer, **buffer)
        if args.normalize_obs:
            top["obs_norm"] = dataclasses.replace(cfg.obs_norm, enabled=True)
        return dataclasses.replace(cfg, **top)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_algo_flags(args, algo: str) -> None:
    """Flags that do not apply to the chosen algorithm, or contradict each other, are errors."""
    if args.ent_coef is not None and args.ent_coef_auto:
        raise UsageError("--ent-coef and --ent-coef-auto are mutually exclusive")
    if args.ent_coef is not None and algo == "td3":
        raise UsageError("--ent-coef applies to SAC and PPO, not TD3")
    if args.ent_coef_auto and algo != "sac":
        raise UsageError("--ent-coef-auto applies to SAC only")
    if args.ent_coef_min is not None and algo != "sac":
        raise UsageError("--ent-coef-min applies to SAC only")
    offpolicy_only = ("tau", "buffer_size", "learning_starts")
    for flag in offpolicy_only:
        if algo == "ppo" and getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to TD3 and SAC, not PPO")
    for flag in ("n_steps", "n_epochs", "gae_lambda", "clip_range"):
        if algo != "ppo" and getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to PPO only")
    if args.action_noise_sigma is not None and algo != "td3":
        raise UsageError("--action-noise-sigma applies to TD3 only")


def parse_net_arch(text: str) -> tuple[int, ...]:
    """'256,256,128' -> (256, 256, 128); anything else is a UsageError."""
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}")
    return sizes


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when available; an unavailable CUDA device is a UsageError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown --device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name} asked for CUDA, which is not available here")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_save_dir(path: str) -> Path:
    """Create the save dir, or fail with a one-line error when it cannot be written."""
    save_dir = Path(path)
    try:
        save_dir.mkdir(parents=True, exist_ok=True)
        probe = save_dir / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"cannot write to --save-dir {path}: {exc.strerror or exc}") from None
    return save_dir


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env_id is None:
        raise UsageError("soccer training arrives with the environment layer; pass --env-id for now")
    for flag in ("n_envs", "eval_episodes", "log_interval"):
        if getattr(args, flag) <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be > 0, got {getattr(args, flag)}")
    eval_seeds = parse_int_list(args.eval_seeds, "--eval-seeds")
    device = resolve_device(args.device)

    resume = None
    base = None
    if args.resume_model:
        try:
            resume = load_checkpoint(Path(args.resume_model))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if resume["algo"] != args.algo:
            raise UsageError(f"--resume-model holds a {resume['algo']} checkpoint, but --algo is {args.algo}")
        base = checkpoint_config(resume)
    cfg = algo_config(args, args.algo, base)
    total = args.total_timesteps if args.total_timesteps is not None else 1_000_000
    try:
        run = RunConfig(total_timesteps=total, seed=args.seed, eval_freq=args.eval_freq,
                        log_interval=args.log_interval, save_replay=args.save_replay)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    try:
        env = make_gym_vec_env(args.env_id, args.n_envs, args.vec_env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        obs_dim, low, high = check_box_spaces(env)
    except ValueError as exc:
        env.close()
        raise UsageError(f"{args.env_id}: {exc}") from None
    if resume is not None and resume["obs_shape"] != [obs_dim]:
        env.close()
        raise UsageError(f"--resume-model was trained on observations of shape {tuple(resume['obs_shape'])}, "
                         f"{args.env_id} has ({obs_dim},)")
    save_dir = prepare_save_dir(args.save_dir)

    seed_everything(args.seed)
    algo = build_algorithm(args.algo, obs_dim, low, high, cfg, device)
    if resume is not None:
        algo.load_state_dict(resume["algo_state"])

    def evaluate(policy, timestep: int) -> dict[str, float]:
        records = [r for s in eval_seeds for r in evaluate_returns(args.env_id, policy.predict, args.eval_episodes,
                                                                    seed=s * 10_000)]
        return {EVAL_MEAN_RETURN: float(np.mean([r["return"] for r in records])),
                EVAL_MEAN_LENGTH: float(np.mean([r["length"] for r in records]))}

    print(f"training {args.algo.upper()} on {args.env_id} x{args.n_envs} for {total} timesteps on {device}; "
          f"saving to {save_dir}")
    runner = Runner(algo, env, run, save_dir=save_dir, evaluate=evaluate, logger=RunLogger(save_dir),
                    metadata={"env_id": args.env_id, "n_envs": args.n_envs}, resume=resume)
    try:
        final = runner.train()
    finally:
        env.close()
    print(f"final evaluation: mean return {final[EVAL_MEAN_RETURN]:.2f}; checkpoint: {save_dir / 'checkpoint.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
