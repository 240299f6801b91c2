"""Train TD3, SAC or PPO: on the soccer tasks (default) or on any gymnasium Box task (--env-id).

    python train.py                                   # TD3 on the three soccer tasks, official-score evals
    python train.py --env-id Pendulum-v1 --algo sac --total-timesteps 15000 --seed 0 --save-dir runs/p

Flags left unset keep the defaults: the soccer workflow's (SOCCER_DEFAULTS below, from the seed
pipeline) on the soccer tasks, then the algorithm config's (rlcore/config.py, shown in --help).
The run's save dir receives checkpoint.pt (resumable with --resume-model), metrics.jsonl, TensorBoard
event files and, at the end, final_model.zip (SB3) with final_model.meta.json and submission_final/
(submission/bundle.py). --resume-model X.zip warm-starts from an SB3 zip instead (weights only).
"""

from __future__ import annotations

import dataclasses
import math
import random
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bc.cloning import load_bc
from bc.dataset import load_demos
from bc.prefill import PREFILL_METRIC, prefill_replay
from bc.warmstart import BC_INIT_STD, check_bc_compatible, load_bc_into, unseen_tasks, validate_bc_flags
from envs.command import WALK_CONTROLLER, CommandOptions, MacroReward
from envs.factory import ACTION_MODES, REWARD_PROFILES, make_vec_env
from envs.fastsim import SIMS
from envs.hub import configure_hf
from envs.preprocess import OBS_DIM
from envs.tasks import KTT_STEPS_WEIGHT, build_task_list, parse_task_names, parse_task_weights
from envs.walk import COMMAND_LIMITS as WALK_COMMAND_LIMITS
from rlcore import metrics
from rlcore.algos import build_algorithm
from rlcore.checkpoint import check_state_fits, checkpoint_config, load_checkpoint
from rlcore.cliutil import (
    ArgumentParser,
    UsageError,
    finite_float,
    parse_seeds,
    parse_with_config,
    resolve_device,
    run_cli,
    seed_type,
)
from rlcore.config import CONFIGS, PRECISIONS, BufferConfig, NetConfig, ObsNormConfig, config_to_dict, field_docs
from rlcore.fileio import SaveDirLock, atomic_write, check_output_dir, remove_stale_temp_files
from rlcore.gym_env import evaluate_over_seeds, make_gym_vec_env
from rlcore.logger import RunLogger
from rlcore.metrics import EVAL_MEAN_LENGTH, EVAL_MEAN_RETURN
from rlcore.normstats import read_normalizer_stats
from rlcore.precision import compute_dtype
from rlcore.runner import Interrupted, RunConfig, Runner, check_box_spaces
from rlcore.safepickle import reason
from scoring.curves import read_metrics, render_learning_curve
from scoring.eval_metrics import competition_metrics, legacy_metrics
from scoring.harness import MAX_EPISODES
from scoring.harness import evaluate as evaluate_soccer
from scoring.legacy import LEGACY_STEPS_WEIGHT
from skills.residual import RESIDUAL_KEY, residual_wrapper
from submission import MODEL_FILES, WarmStart, real_action_bounds
from submission.best import BestModels, write_run_model

SOCCER_DEFAULTS = {"total_timesteps": 1_000_000, "n_envs": 6, "eval_freq": 50_000, "eval_episodes": 2,
                   "eval_seeds": "0,1,2,3", "sim": "fast"}
"""Run defaults on the soccer tasks, from the seed pipeline (docs/seed_pipeline.md), except eval_episodes:
per eval seed per task, 2 instead of the seed's 8 (which cost 96 full episodes per evaluation)."""
GENERIC_DEFAULTS = {"total_timesteps": 1_000_000, "n_envs": 1, "eval_freq": 0, "eval_episodes": 10, "eval_seeds": "0"}
SOCCER_NET_ARCH = (256, 256, 128)
BC_ACTOR_LEARNING_STARTS = {"td3": 10_000, "sac": 10_000, "ppo": 5}
"""How long a BC-warm-started actor waits while the fresh critic learns (TD3/SAC: gradient steps; PPO: rollouts
of value-only updates): a fresh critic's gradient, or a fresh value function's advantages, otherwise knock the
cloned stand over. Measured: TD3 with it (and the anchor) kept the stand; PPO fell within two updates without it
and still fell with it (docs/results.md); --actor-learning-starts overrides it."""
BC_ANCHOR_COEF = 10.0
"""Anchor weight when fine-tuning from --bc-weights; --bc-anchor-coef overrides."""
BC_ACTOR_COEF = 100.0
"""BC weight in the actor loss when demonstrations are prefilled; --bc-actor-coef overrides. Far above TD3+BC's
0.4 on purpose: the cloned stand is fragile, and a TD3 fine-tune from it (BC file + prefill + 10k critic-only
steps) fell with 0.4 and stood at the BC score (-0.992 on both penalty kicks) with 100 (docs/results.md)."""
EVAL_SEED_POOL = 10_000
"""--eval-seeds-random draws distinct seeds from [0, EVAL_SEED_POOL)."""
CURVE_FILE = "learning_curve.png"
"""The evaluation scores per task against timesteps, redrawn after every evaluation (scoring/curves.py)."""


def soccer_config(algo: str):
    """The algorithm config the soccer workflow starts from: the seed's net [256, 256, 128], lr 3e-4, batch 256
    and, off-policy, a 500k buffer with 20k warm-up steps (docs/seed_pipeline.md)."""
    cfg = CONFIGS[algo]()
    net = dataclasses.replace(cfg.net, net_arch=SOCCER_NET_ARCH)
    if algo == "ppo":
        return dataclasses.replace(cfg, net=net, learning_rate=3e-4, batch_size=256)
    buffer = dataclasses.replace(cfg.buffer, buffer_size=500_000, learning_starts=20_000, batch_size=256)
    return dataclasses.replace(cfg, net=net, learning_rate=3e-4, buffer=buffer)

_NET, _BUF, _NORM = field_docs(NetConfig), field_docs(BufferConfig), field_docs(ObsNormConfig)
_TD3, _SAC, _PPO = (field_docs(CONFIGS[a]) for a in ("td3", "sac", "ppo"))
_RUN = field_docs(RunConfig)
_CMD = field_docs(CommandOptions)
_MACRO = field_docs(MacroReward)
MACRO_REWARD_FLAGS = ("macro_reward_radius", "macro_reward_alignment_threshold", "macro_reward_cap")
COMMAND_FLAGS = ("low_level_controller", "controller_config", "command_limits", "gait_threshold", "macro",
                 "walk_params", "residual_striker",
                 "macro_reward_bonus", *MACRO_REWARD_FLAGS)
"""Flags of the command action mode only."""


RECIPES = {
    "striker-residual": ["--algo", "td3", "--action-mode", "command", "--low-level-controller", "walk",
                         "--residual-striker", "0.3", "--action-repeat", "5", "--learning-starts", "10000",
                         "--actor-learning-starts", "20000", "--bc-anchor-coef", "10", "--total-timesteps", "700000",
                         "--eval-freq", "100000", "--threads", "1", "--save-dir", "runs/striker_residual"],
}
"""Whole runs by name (--recipe NAME): the flags they stand for, which flags given after them override."""
DEFAULT_RECIPE = "striker-residual"
"""What `python train.py` with no arguments runs: the best recipe measured (docs/results.md): TD3 residual RL over
the scripted striker and our walk engine on the three tasks; its first evaluations, before the actor moves, score
the striker, so the best model scores at least that; about an hour on a 2-core CPU. The anchor keeps corrections
small: without it the actor's first 10k updates knocked the walk over (docs/results.md)."""


def expand_recipe(argv: list[str]) -> list[str]:
    """argv with `--recipe NAME` replaced by the recipe's flags (placed first, so the user's flags win); no
    arguments at all is the default recipe."""
    if not argv:
        argv = ["--recipe", DEFAULT_RECIPE]
    out, recipe, i = [], None, 0
    while i < len(argv):
        token = argv[i]
        if token == "--recipe" or token.startswith("--recipe="):
            if token == "--recipe" and i + 1 >= len(argv):
                raise UsageError(f"--recipe needs a name: {', '.join(RECIPES)}")
            recipe = token.split("=", 1)[1] if "=" in token else argv[i + 1]
            i += 1 if "=" in token else 2
            continue
        out.append(token)
        i += 1
    if recipe is None:
        return out
    if recipe not in RECIPES:
        raise UsageError(f"unknown --recipe {recipe!r}; known: {', '.join(RECIPES)}")
    return [*RECIPES[recipe], *out]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="train.py", description=__doc__.split("\n\n")[0])
    run = parser.add_argument_group("run")
    run.add_argument("--recipe", choices=sorted(RECIPES), help="start from a whole measured run's flags (flags given "
                     f"too override them); no arguments at all runs --recipe {DEFAULT_RECIPE}: "
                     + " ".join(RECIPES[DEFAULT_RECIPE]))
    run.add_argument("--algo", choices=sorted(CONFIGS), default="td3", help="algorithm (default td3)")
    run.add_argument("--env-id", help="train on this gymnasium env id instead of the soccer tasks")
    run.add_argument("--total-timesteps", type=int, help=_RUN["total_timesteps"] + " (default 1e6)")
    run.add_argument("--n-envs", type=int, help="envs in the vector env (default: soccer 6, --env-id 1)")
    run.add_argument("--vec-env", choices=["sync", "async"], default="sync",
                     help="gymnasium vector env kind (default sync: faster for 500 Hz envs)")
    run.add_argument("--seed", type=seed_type, default=0, help=_RUN["seed"] + " (default 0)")
    run.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, cuda:1 (default auto)")
    run.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's own, one per core). "
                     "Use 1 when other jobs share the CPU: OpenMP threads waiting for a busy core slowed updates "
                     "several-fold on a shared 2-core machine (README Benchmarks)")
    run.add_argument("--save-dir", default="runs/latest", help="output directory (default runs/latest)")
    run.add_argument("--resume-model", help="continue from a checkpoint.pt (counters, schedules, normaliser), or "
                     "warm-start from an SB3 .zip (networks, and the normaliser saved beside it; from timestep 0)")
    run.add_argument("--save-replay", action="store_true", help=_RUN["save_replay"])
    run.add_argument("--config", metavar="RUN.yaml", help="read options from a YAML file (option: value); "
                     "flags given on the command line win; an unknown option is an error")

    algo = parser.add_argument_group("algorithm (unset = the config default)")
    algo.add_argument("--net-arch", help="comma-separated hidden sizes, e.g. 256,256,128. " + _NET["net_arch"])
    algo.add_argument("--activation", help=_NET["activation"])
    algo.add_argument("--lr", type=finite_float, help="learning rate (TD3 1e-3, SAC/PPO 3e-4)")
    algo.add_argument("--gamma", type=finite_float, help=_TD3["gamma"])
    algo.add_argument("--tau", type=finite_float, help=_TD3["tau"] + " (TD3/SAC)")
    algo.add_argument("--batch-size", type=int, help="minibatch size (TD3/SAC 256, PPO 64)")
    algo.add_argument("--buffer-size", type=int, help=_BUF["buffer_size"])
    algo.add_argument("--learning-starts", type=int, help=_BUF["learning_starts"])
    algo.add_argument("--action-noise-sigma", type=finite_float, help="TD3: " + _TD3["exploration_noise"])
    algo.add_argument("--ent-coef", type=finite_float, help="SAC: fixed alpha; PPO: " + _PPO["ent_coef"])
    algo.add_argument("--ent-coef-auto", action="store_true", help="SAC: tune alpha automatically (the default)")
    algo.add_argument("--ent-coef-min", type=finite_float, help="SAC: " + _SAC["ent_coef_min"])
    algo.add_argument("--n-steps", type=int, help="PPO: " + _PPO["n_steps"])
    algo.add_argument("--n-epochs", type=int, help="PPO: " + _PPO["n_epochs"])
    algo.add_argument("--gae-lambda", type=finite_float, help="PPO: " + _PPO["gae_lambda"])
    algo.add_argument("--clip-range", type=finite_float, help="PPO: " + _PPO["clip_range"])
    algo.add_argument("--normalize-obs", action="store_true", help=_NORM["enabled"])
    algo.add_argument("--vecnormalize-path", metavar="FILE", help="with --normalize-obs: start the normaliser from "
                      "these statistics (an SB3 vecnormalize.pkl, or a model's .meta.json); read only, never "
                      "written (every saved model carries its own statistics)")
    algo.add_argument("--train-freq", type=int, help="TD3/SAC: " + _TD3["train_freq"] + " (default 1)")
    algo.add_argument("--gradient-steps", type=int, help="TD3/SAC: " + _TD3["gradient_steps"] + " (default 1; "
                      "with many envs and a large --batch-size, several per vector step)")
    algo.add_argument("--precision", choices=PRECISIONS, help="TD3/SAC: " + _TD3["precision"] + " Taken from "
                      "this flag, not from a --resume-model checkpoint (default fp32)")
    algo.add_argument("--cuda-graphs", action="store_true", default=None, help="TD3/SAC, CUDA only: "
                      + _TD3["cuda_graphs"])
    algo.add_argument("--actor-learning-starts", type=int, help="TD3/SAC: " + _TD3["actor_learning_starts"]
                      + " PPO: rollouts that train only the value function. (default 0; with --bc-weights "
                      f"{BC_ACTOR_LEARNING_STARTS['td3']} gradient steps, PPO {BC_ACTOR_LEARNING_STARTS['ppo']} "
                      "rollouts)")

    bc = parser.add_argument_group("behaviour cloning warm start")
    bc.add_argument("--bc-weights", help="start the actor (and the normaliser) from a BC file of python -m bc.train")
    bc.add_argument("--bc-init-std", type=finite_float, default=BC_INIT_STD,
                    help="SAC/PPO: exploration std the BC-started actor begins with, on every action dim "
                    f"(BC fits only the mean; default {BC_INIT_STD}, the recorded demonstrations' noise)")
    bc.add_argument("--freeze-bc-layers", type=int, default=0,
                    help="keep the first N Linear layers of the BC actor fixed (needs --bc-weights)")
    bc.add_argument("--freeze-until-step", type=int, default=0, help="unfreeze after this many timesteps")
    bc.add_argument("--bc-replay-dataset", help="TD3/SAC: demonstrations (.npz of python -m bc.record) kept in a "
                    "protected part of the replay buffer")
    bc.add_argument("--bc-replay-fraction", type=finite_float, default=0.0,
                    help="share of the replay buffer and of each batch given to those demonstrations, in [0, 1)")
    bc.add_argument("--bc-actor-coef", type=finite_float, help="TD3/SAC: " + _TD3["bc_coef"]
                    + f" (default 0; {BC_ACTOR_COEF} with --bc-replay-dataset)")
    bc.add_argument("--bc-anchor-coef", type=finite_float, help=_TD3["anchor_coef"]
                    + f" The anchor is the --bc-weights actor or a .zip --resume-model's. (default 0; "
                    f"{BC_ANCHOR_COEF} with --bc-weights)")

    soccer = parser.add_argument_group("soccer tasks (when --env-id is absent)")
    soccer.add_argument("--tasks", default="all", help="comma-separated task names, or all (default)")
    soccer.add_argument("--task-weights", help="env slots per task, e.g. goalie_penalty_kick=2,kick_to_target=1 "
                        "(allocated proportionally)")
    soccer.add_argument("--reward-profile", choices=sorted(REWARD_PROFILES) + ["base"], default="competition",
                        help="training reward (default competition: dense, aligned with the official score; "
                        "base is the seed's name for env)")
    soccer.add_argument("--action-mode", choices=sorted(ACTION_MODES), default="torque",
                        help="what the policy outputs (default torque; command: (vx, vy, yaw rate) for the walking "
                        "controller, which may fire a kick macro)")
    soccer.add_argument("--action-repeat", type=int, default=1, help="physics steps per decision (default 1)")
    soccer.add_argument("--low-level-controller", metavar="PATH|walk",
                        help="command mode: 'walk' for our walk engine (no download), or the walking controller's "
                        "TorchScript file (default: robot/lower_t1_control.pt of the hub model "
                        "SaiResearch/booster_soccer_models; needs huggingface_hub)")
    soccer.add_argument("--walk-params", metavar="PATH", help="with --low-level-controller walk: the walk engine's "
                        "parameter file (default: the shipped envs/walk_params.json)")
    soccer.add_argument("--residual-striker", type=finite_float, metavar="SCALE",
                        help="with --low-level-controller walk: residual RL over the scripted striker; the walking "
                        "command is the striker's plus SCALE x the policy's action (in (0, 2]; 0.3 corrects without "
                        "overriding), so an untrained policy plays about the striker (skills/residual.py)")
    soccer.add_argument("--controller-config", metavar="PATH", help="command mode: the controller's YAML config "
                        "(default: the .yaml with the same stem next to --low-level-controller)")
    soccer.add_argument("--command-limits", metavar="VX,VY,YAW", help="command mode: the speeds of a command of 1, "
                        "in m/s, m/s, rad/s (default 1,1,1: the seed's unscaled command)")
    soccer.add_argument("--gait-threshold", type=finite_float, help="command mode: " + _CMD["gait_threshold"]
                        + f" (default {CommandOptions().gait_threshold})")
    soccer.add_argument("--macro", metavar="PATH_OR_NAME", help="command mode: the kick macro, a mocap .npz file or "
                        "a clip name of the hub dataset (goal_kick, kick_ball1, ...) (default: none)")
    soccer.add_argument("--macro-reward-bonus", type=finite_float, help="command mode: " + _MACRO["bonus"]
                        + " Needs --reward-profile pressure_shot or tight, or competition with "
                        "--allow-macro-bonus-with-competition. (default: none)")
    soccer.add_argument("--macro-reward-radius", type=finite_float, help=_MACRO["radius"] + f" (default "
                        f"{MacroReward.radius})")
    soccer.add_argument("--macro-reward-alignment-threshold", type=finite_float, help=_MACRO["alignment"]
                        + f" (default {MacroReward.alignment})")
    soccer.add_argument("--macro-reward-cap", type=finite_float, help=_MACRO["cap"] + f" (default {MacroReward.cap})")
    soccer.add_argument("--allow-macro-bonus-with-competition", action="store_true",
                        help="let --macro-reward-bonus add to the competition profile (it then no longer ranks "
                        "episodes exactly as the official score)")
    soccer.add_argument("--hf-token", help="Hugging Face token for hub downloads (sets HF_TOKEN)")
    soccer.add_argument("--hf-home", metavar="DIR", help="Hugging Face cache folder (sets HF_HOME; hub files in "
                        "DIR/hub)")
    soccer.add_argument("--max-episode-steps", type=int, help="cut episodes (training and evaluation) at this many "
                        "steps instead of the tasks' 5000: for smoke tests; the competition runs 5000")
    soccer.add_argument("--sim", choices=SIMS, help="simulator of the training envs and the training-time "
                        "evaluations: fast (our twin of each task: sai_mujoco's model and reset, equal to its step "
                        "for step, several times faster) or official (sai_mujoco's own step) (default fast)")
    soccer.add_argument("--env-workers", type=int, default=1, help="shard the training envs over this many worker "
                        "processes, one per core (default 1: all envs in this process)")
    soccer.add_argument("--ktt-steps-weight", type=finite_float, default=KTT_STEPS_WEIGHT,
                        help=f"kick_to_target steps weight of the official score (default {KTT_STEPS_WEIGHT})")

    ev = parser.add_argument_group("evaluation")
    ev.add_argument("--eval-freq", type=int, help=_RUN["eval_freq"] + " (default: soccer 50000, --env-id 0)")
    ev.add_argument("--eval-episodes", type=int, help="episodes per eval seed (per task on soccer; "
                    "default: soccer 2, --env-id 10)")
    ev.add_argument("--eval-seeds", help="comma-separated eval seeds (default: soccer 0,1,2,3, --env-id 0)")
    ev.add_argument("--eval-seeds-random", type=int, default=0,
                    help=f"if > 0: draw this many distinct eval seeds in [0, {EVAL_SEED_POOL}) from --seed "
                    "(overrides --eval-seeds)")
    ev.add_argument("--competition-only-eval", action="store_true", help="soccer: log only the official scores "
                    "(comp_eval/*, eval_comp/*); no legacy eval/* keys and no best_model.zip")
    ev.add_argument("--legacy-only-eval", action="store_true", help="soccer: log only the legacy env-weight scores "
                    "(eval/*); the best model then follows eval/S_overall and no best_model_competition.zip")
    ev.add_argument("--steps-weight", type=finite_float, default=LEGACY_STEPS_WEIGHT,
                    help=f"per-step weight of the legacy score (default {LEGACY_STEPS_WEIGHT})")
    ev.add_argument("--checkpoint-freq", type=int, default=0, help=_RUN["checkpoint_freq"])
    ev.add_argument("--log-interval", type=int, default=2000, help=_RUN["log_interval"])
    return parser


def apply_defaults(args) -> None:
    """Fill the flags left unset with the soccer workflow's or the generic path's defaults."""
    table = GENERIC_DEFAULTS if args.env_id else SOCCER_DEFAULTS
    for key, value in table.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


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
                       ("ent_coef_min", "ent_coef_min"), ("actor_learning_starts", "actor_learning_starts"),
                       ("bc_actor_coef", "bc_coef"), ("bc_anchor_coef", "anchor_coef"), ("train_freq", "train_freq"),
                       ("gradient_steps", "gradient_steps"), ("precision", "precision"),
                       ("cuda_graphs", "cuda_graphs")):
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
    offpolicy_only = ("tau", "buffer_size", "learning_starts", "bc_actor_coef", "train_freq", "gradient_steps",
                      "precision", "cuda_graphs")
    for flag in offpolicy_only:
        if algo == "ppo" and getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to TD3 and SAC, not PPO")
    for flag in ("n_steps", "n_epochs", "gae_lambda", "clip_range"):
        if algo != "ppo" and getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} applies to PPO only")
    if args.action_noise_sigma is not None and algo != "td3":
        raise UsageError("--action-noise-sigma applies to TD3 only")


def check_speed_flags(args, cfg, device: torch.device) -> None:
    """--precision bf16 needs a device with native bf16, --cuda-graphs a CUDA device (UsageError otherwise)."""
    if getattr(cfg, "cuda_graphs", False) and device.type != "cuda":
        raise UsageError(f"--cuda-graphs needs a CUDA device; the run's device is {device}")
    try:
        compute_dtype(getattr(cfg, "precision", "fp32"), device)
    except ValueError as exc:
        raise UsageError(f"--precision bf16 on {device}: {exc}") from None


def parse_net_arch(text: str) -> tuple[int, ...]:
    """'256,256,128' -> (256, 256, 128); anything else is a UsageError."""
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise UsageError(f"--net-arch must be comma-separated positive integers, got {text!r}")
    return sizes


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_save_dir(path: str) -> tuple[Path, SaveDirLock]:
    """Create the save dir and lock it for this run (rlcore.fileio: a second run on it is refused, a killed run's
    lock taken over), then sweep the temp files a killed writer left; one-line errors."""
    save_dir = check_output_dir(path, "--save-dir")
    lock = SaveDirLock(save_dir).acquire()
    if lock.taken_over is not None:
        print(f"note: --save-dir {save_dir} was locked by pid {lock.taken_over}, which is no longer running; "
              "taking it over")
    for stale in remove_stale_temp_files(save_dir):
        print(f"removed {stale.name}, left by an interrupted write")
    return save_dir, lock


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    argv = expand_recipe(given)
    args = parse_with_config(build_parser(), argv)
    if argv != given:  # a recipe: say what it stands for
        print(f"recipe: python train.py {' '.join(argv)}")
    apply_defaults(args)
    if args.reward_profile == "base":  # the seed's alias: the raw env reward
        args.reward_profile = "env"
    configure_hf(args.hf_token, args.hf_home)
    if args.env_id is not None and (args.sim is not None or args.env_workers != 1):
        raise UsageError("--sim and --env-workers apply to the soccer tasks, not to --env-id")
    if args.env_id is not None and args.residual_striker is not None:
        raise UsageError("--residual-striker applies to the soccer tasks, not to --env-id")
    for flag in ("total_timesteps", "n_envs", "eval_episodes", "log_interval", "action_repeat", "max_episode_steps",
                 "env_workers"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise UsageError(f"--{flag.replace('_', '-')} must be > 0, got {getattr(args, flag)}")
    if not str(args.save_dir).strip():
        raise UsageError(f"--save-dir needs a directory path, got {args.save_dir!r}")
    eval_seeds = parse_seeds(args.eval_seeds, "--eval-seeds")
    if not 0 <= args.eval_seeds_random <= EVAL_SEED_POOL:
        raise UsageError(f"--eval-seeds-random must be in [0, {EVAL_SEED_POOL}] (distinct seeds drawn from "
                         f"[0, {EVAL_SEED_POOL})), got {args.eval_seeds_random}")
    if args.eval_seeds_random:
        draw = np.random.default_rng(args.seed).choice(EVAL_SEED_POOL, size=args.eval_seeds_random, replace=False)
        eval_seeds = sorted(int(s) for s in draw)
    if args.eval_episodes > MAX_EPISODES:
        raise UsageError(f"--eval-episodes must be <= {MAX_EPISODES}, got {args.eval_episodes}")
    if args.competition_only_eval and args.legacy_only_eval:
        raise UsageError("--competition-only-eval and --legacy-only-eval are mutually exclusive")
    device = resolve_device(args.device)
    if args.threads < 0:
        raise UsageError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)

    resume = warm = None
    if args.resume_model and args.resume_model.endswith(".zip"):
        try:
            warm = WarmStart.read(args.resume_model, args.algo)
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
    elif args.resume_model:
        try:
            resume = load_checkpoint(Path(args.resume_model))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if resume["algo"] != args.algo:
            raise UsageError(f"--resume-model holds a {resume['algo']} checkpoint, but --algo is {args.algo}")
        check_resume_flags(args, resume)
    if resume is not None:
        base = checkpoint_config(resume)
    else:
        base = None if args.env_id else soccer_config(args.algo)
    if warm is not None:
        base = warm.config(base if base is not None else CONFIGS[args.algo]())
    cfg = apply_bc_flags(args, algo_config(args, args.algo, base), resuming=resume is not None)
    check_speed_flags(args, cfg, device)
    if resume is not None:
        try:
            check_state_fits(resume, cfg, where=args.resume_model)
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
    start_stats = read_vecnormalize(args, resuming=resume is not None)
    try:
        run = RunConfig(total_timesteps=args.total_timesteps, seed=args.seed, eval_freq=args.eval_freq,
                        checkpoint_freq=args.checkpoint_freq, log_interval=args.log_interval,
                        save_replay=args.save_replay,
                        random_warmup=warm is None and args.bc_weights is None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    env, evaluate, metadata, description = (build_generic(args, eval_seeds) if args.env_id
                                            else build_soccer(args, eval_seeds))
    try:
        obs_dim, low, high = check_box_spaces(env)
        if resume is not None and resume["obs_shape"] != [obs_dim]:
            raise ValueError(f"--resume-model was trained on observations of shape {tuple(resume['obs_shape'])}, "
                             f"the env has ({obs_dim},)")
        if resume is not None and len(resume["action_low"]) != len(low):
            raise ValueError(f"--resume-model acts in {len(resume['action_low'])} dimensions, the env in {len(low)}")
        real_low, real_high = real_action_bounds(env)
        if warm is not None:
            warm.check(cfg, obs_dim, real_low, real_high)
        if start_stats is not None and len(start_stats["mean"]) != obs_dim:
            raise UsageError(f"--vecnormalize-path holds statistics of {len(start_stats['mean'])}-dim observations, "
                             f"the env gives {obs_dim}")
        action_mode = None if args.env_id else args.action_mode
        bc_payload = load_bc(args.bc_weights) if args.bc_weights else None
        if bc_payload is not None:
            check_bc_compatible(bc_payload, algo=args.algo, net=cfg.net, obs_norm=cfg.obs_norm, obs_dim=obs_dim,
                                act_dim=len(low), action_mode=action_mode)
            unseen = unseen_tasks(bc_payload, metadata["tasks"]) if args.env_id is None else []
            if unseen:
                print(f"warning: --bc-weights: the BC data holds no {', '.join(unseen)} episodes; its normaliser "
                      "will shift under the cloned actor (record demonstrations on every trained task)",
                      file=sys.stderr)
        if uses_prefill(args):
            load_demos(args.bc_replay_dataset, obs_dim=obs_dim, act_dim=len(low))
        if resume is not None:
            for note in resume_notes(resume, cfg, metadata):
                print(f"note: --resume-model: {note}")
        save_dir, lock = prepare_save_dir(args.save_dir)
    except (ValueError, UsageError) as exc:
        env.close()
        raise UsageError(f"{description}: {exc}" if not isinstance(exc, UsageError) else str(exc)) from None
    try:
        return run_training(args, argv, env=env, evaluate=evaluate, metadata=metadata, description=description,
                            cfg=cfg, run=run, device=device, resume=resume, warm=warm, start_stats=start_stats,
                            bc_payload=bc_payload, action_mode=action_mode, save_dir=save_dir,
                            spaces=(obs_dim, low, high, real_low, real_high))
    finally:
        env.close()
        lock.release()


def run_training(args, argv: list[str], *, env, evaluate, metadata: dict, description: str, cfg, run: RunConfig,
                 device, resume: dict | None, warm: WarmStart | None, start_stats: dict | None,
                 bc_payload: dict | None, action_mode: str | None, save_dir: Path, spaces) -> int:
    """Build the algorithm and the runner in the locked save dir, train, write the final model; the exit code."""
    obs_dim, low, high, real_low, real_high = spaces
    seed_everything(args.seed)
    try:
        algo = build_algorithm(args.algo, obs_dim, low, high, cfg, device)
    except RuntimeError as exc:  # a network too large for the device's memory
        raise UsageError(f"cannot build the {args.algo} networks {cfg.net.net_arch}: {reason(exc)}") from None
    start_algorithm(args, algo, resume=resume, warm=warm, stats=start_stats, bc_payload=bc_payload,
                    action_mode=action_mode)
    print(f"training {args.algo.upper()} on {description} for {args.total_timesteps} timesteps on {device}; "
          f"saving to {save_dir}")
    best = None
    if args.env_id is None:
        space = env.single_action_space
        best = BestModels(save_dir, algo, metadata, real_low, real_high, tasks=metadata["tasks"],
                          competition=not args.legacy_only_eval, legacy=not args.competition_only_eval,
                          spaces=(env.single_observation_space.shape, space.low, space.high))
        resumed_at = resume["runner"].get("timesteps", 0) if resume is not None else -1
        history = [row for row in read_metrics(save_dir / "metrics.jsonl")
                   if isinstance(row, dict) and isinstance(row.get("timestep"), int) and row["timestep"] <= resumed_at]
        evaluate = track_evaluations(evaluate, save_dir, best, history)
    try:
        runner = Runner(algo, env, run, save_dir=save_dir, evaluate=evaluate, logger=RunLogger(save_dir),
                        metadata=metadata, resume=resume, tracker=best)
    except ValueError as exc:  # a saved replay buffer or best-model state that does not fit
        raise UsageError(f"--resume-model: {exc}") from None
    except RuntimeError as exc:  # a buffer too large for the device's memory
        raise UsageError(f"cannot allocate the {'rollout' if algo.on_policy else 'replay'} buffer: {reason(exc)}; "
                         "lower --buffer-size / --n-steps") from None
    if uses_prefill(args):
        try:
            report = prefill_replay(runner.replay, args.bc_replay_dataset, seed=args.seed, action_mode=action_mode,
                                    reward_profile=None if args.env_id else args.reward_profile)
        except ValueError as exc:
            raise UsageError(f"--bc-replay-dataset: {exc}") from None
        runner.logger.message(report.message())
        runner.logger.record({PREFILL_METRIC: report.inserted}, runner.timesteps)
    try:
        final = runner.train()
    except Interrupted as stop:
        print(f"{stop.signal_name} at timestep {stop.timesteps}: wrote {stop.checkpoint}; resume with: "
              f"python train.py {resume_command(argv, stop.checkpoint)}", file=sys.stderr)
        return 128 + stop.signum
    lines = ["final evaluation: " + ", ".join(f"{k}={v:.3f}" for k, v in metrics.headline(final).items())]
    model_path = write_run_model(save_dir, "final", algo, metadata, action_low=real_low, action_high=real_high,
                                 timesteps=runner.timesteps, scores=final)
    folder = MODEL_FILES["final"][1] + ("" if model_path.suffix == ".zip" else "_torchscript")
    lines.append(f"final model: {model_path} (submission folder: {save_dir / folder})")
    lines += best.summary() if best is not None else []
    lines.append(f"resume with: --resume-model {save_dir / 'checkpoint.pt'}")
    if (save_dir / CURVE_FILE).is_file():
        lines.append(f"learning curve: {save_dir / CURVE_FILE}")
    lines.append(f"logs: {save_dir / 'metrics.jsonl'}; tensorboard --logdir {save_dir}")
    print("\n== summary ==\n" + "\n".join(lines))
    return 0


def resume_command(argv: list[str], checkpoint: Path) -> str:
    """`argv` with --resume-model pointing at `checkpoint` (the command that continues an interrupted run)."""
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--resume-model":
            skip = True
            continue
        if not token.startswith("--resume-model="):
            kept.append(token)
    return shlex.join([*kept, "--resume-model", str(checkpoint)])


def check_resume_flags(args, resume: dict) -> None:
    """Flags that contradict a checkpoint.pt are errors: the network, normalisation, env, action mode and repeat
    are the checkpoint's, and --total-timesteps counts the whole run (so it cannot be below the steps done)."""
    cfg, meta = checkpoint_config(resume), resume["metadata"]
    done = resume["runner"].get("timesteps", 0)
    where = f"--resume-model {args.resume_model}"
    if args.total_timesteps < done:
        raise UsageError(f"{where} has done {done} timesteps; --total-timesteps counts the whole run, so it must be "
                         f">= {done} (got {args.total_timesteps})")
    if args.net_arch is not None and parse_net_arch(args.net_arch) != cfg.net.net_arch:
        raise UsageError(f"{where} has the network {','.join(map(str, cfg.net.net_arch))}; a resumed run keeps it: "
                         f"drop --net-arch {args.net_arch}")
    if args.activation is not None and args.activation != cfg.net.activation:
        raise UsageError(f"{where} uses the {cfg.net.activation} activation; drop --activation {args.activation}")
    if args.normalize_obs and not cfg.obs_norm.enabled:
        raise UsageError(f"{where} was trained without observation normalisation; drop --normalize-obs (or start a "
                         "new run)")
    trained_env = meta.get("env_id")
    if (trained_env or None) != (args.env_id or None):
        trained = f"--env-id {trained_env}" if trained_env else "the soccer tasks"
        raise UsageError(f"{where} was trained on {trained} (observations of shape {tuple(resume['obs_shape'])}), "
                         f"not on {'--env-id ' + args.env_id if args.env_id else 'the soccer tasks'}")
    if args.env_id is None:
        for flag, value in (("action_mode", args.action_mode), ("action_repeat", args.action_repeat)):
            if flag in meta and meta[flag] != value:
                raise UsageError(f"{where} was trained with --{flag.replace('_', '-')} {meta[flag]}; pass it again "
                                 f"(got {value})")
        if meta.get(RESIDUAL_KEY) != args.residual_striker:
            trained = (f"--residual-striker {meta[RESIDUAL_KEY]}" if meta.get(RESIDUAL_KEY) is not None
                       else "no --residual-striker")
            raise UsageError(f"{where} was trained with {trained}; a resumed run keeps it")


def resume_notes(resume: dict, cfg, metadata: dict) -> list[str]:
    """What differs from the checkpoint and applies from now on: changed hyper-parameters and run settings."""
    before, after = _flat(resume["config"]), _flat(config_to_dict(cfg))
    notes = [f"{key} {before.get(key)!r} -> {after[key]!r} (applies from now on)" for key in after
             if before.get(key) != after[key]]
    trained = resume["metadata"]
    for key in ("tasks", "task_list", "reward_profile", "n_envs"):
        if key in trained and key in metadata and trained[key] != metadata[key]:
            notes.append(f"{key} {trained[key]!r} -> {metadata[key]!r} (applies from now on)")
    return notes


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def start_algorithm(args, algo, *, resume: dict | None, warm: WarmStart | None, stats: dict | None,
                    bc_payload: dict | None, action_mode: str | None) -> None:
    """Bring a fresh algorithm to its starting point: a checkpoint's state, or a zip warm start, normaliser
    statistics and a BC actor; then the warm-start anchor and the BC freeze (UsageError on bad values)."""
    if resume is not None:
        algo.load_state_dict(resume["algo_state"])  # anchor and freeze included (check_state_fits passed)
        for optimizer in (v for v in vars(algo).values() if isinstance(v, torch.optim.Optimizer)):
            for group in optimizer.param_groups:  # a changed --lr applies from now on (resume_notes says so)
                group["lr"] = algo.cfg.learning_rate
        return
    if warm is not None:
        try:
            print(warm.apply(algo))
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
    if stats is not None:
        algo.normalizer.load_stats(stats)
        print(f"normaliser starts from {args.vecnormalize_path} (count {stats['count']:,.0f}); the file is only read")
    if bc_payload is not None:
        print(load_bc_into(algo, bc_payload, action_mode=action_mode, init_std=args.bc_init_std))
    elif warm is None and args.env_id is None and args.residual_striker is not None:
        algo.zero_action_head()
        print("note: --residual-striker: the actor starts at a zero correction (it plays the striker)")
    if getattr(algo.cfg, "anchor_coef", 0) > 0:
        algo.set_anchor()
    if bc_payload is not None and args.freeze_bc_layers:
        try:
            algo.set_freeze(args.freeze_bc_layers, args.freeze_until_step)
        except ValueError as exc:
            raise UsageError(f"--freeze-bc-layers: {exc}") from None


def read_vecnormalize(args, *, resuming: bool) -> dict | None:
    """The statistics of --vecnormalize-path (None without it); flags that contradict it are errors."""
    if not args.vecnormalize_path:
        return None
    if not args.normalize_obs:
        raise UsageError("--vecnormalize-path needs --normalize-obs")
    if resuming:
        raise UsageError("--vecnormalize-path cannot be used with a checkpoint.pt --resume-model: the checkpoint "
                         "holds its own normaliser statistics")
    if args.bc_weights:
        raise UsageError("--vecnormalize-path and --bc-weights both set the normaliser: the BC file carries the "
                         "statistics its actor was trained with")
    try:
        return read_normalizer_stats(args.vecnormalize_path)
    except ValueError as exc:
        raise UsageError(f"--vecnormalize-path: {exc}") from None


def uses_prefill(args) -> bool:
    """Replay prefill applies to the off-policy algorithms (PPO warns and ignores it)."""
    return bool(args.bc_replay_dataset) and args.algo != "ppo"


def apply_bc_flags(args, cfg, *, resuming: bool):
    """Check the BC flags together; size the demo region; give a BC-warm-started actor a critic-only start."""
    try:
        for warning in validate_bc_flags(args.algo, bc_weights=args.bc_weights,
                                         freeze_bc_layers=args.freeze_bc_layers,
                                         freeze_until_step=args.freeze_until_step,
                                         bc_replay_dataset=args.bc_replay_dataset,
                                         bc_replay_fraction=args.bc_replay_fraction, resuming=resuming):
            print(f"warning: {warning}", file=sys.stderr)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not (math.isfinite(args.bc_init_std) and args.bc_init_std > 0):
        raise UsageError(f"--bc-init-std must be finite and > 0, got {args.bc_init_std}")
    if args.bc_weights and not Path(args.bc_weights).is_file():
        raise UsageError(f"--bc-weights: no such file {args.bc_weights}")
    if uses_prefill(args):
        cfg = dataclasses.replace(cfg, buffer=dataclasses.replace(cfg.buffer, demo_fraction=args.bc_replay_fraction))
        if args.bc_actor_coef is None:
            print(f"note: --bc-replay-dataset: the actor loss clones the demonstrations with weight {BC_ACTOR_COEF} "
                  "(--bc-actor-coef)")
            cfg = dataclasses.replace(cfg, bc_coef=BC_ACTOR_COEF)
    if args.bc_anchor_coef and not (args.bc_weights or (args.resume_model or "").endswith(".zip")
                                    or args.residual_striker is not None):
        raise UsageError("--bc-anchor-coef needs a warm-started actor: --bc-weights, a .zip --resume-model or "
                         "--residual-striker (whose anchor is the zero correction)")
    if args.bc_weights and args.bc_anchor_coef is None and not resuming:
        print(f"note: --bc-weights: the actor is anchored to the BC actor with weight {BC_ANCHOR_COEF} "
              "(--bc-anchor-coef)")
        cfg = dataclasses.replace(cfg, anchor_coef=BC_ANCHOR_COEF)
    if (args.bc_weights or args.residual_striker is not None) and args.actor_learning_starts is None:
        starts = BC_ACTOR_LEARNING_STARTS[args.algo]
        unit = "rollouts of value-only updates" if args.algo == "ppo" else "critic-only gradient steps"
        print(f"note: {'--bc-weights' if args.bc_weights else '--residual-striker'}: the actor waits {starts} {unit} "
              "(--actor-learning-starts)")
        cfg = dataclasses.replace(cfg, actor_learning_starts=starts)
    return cfg


def track_evaluations(evaluate, save_dir: Path, best: BestModels, history: list[dict]):
    """Wrap a soccer evaluate fn: keep the best models (with the weights and normaliser just evaluated), add
    the best-so-far keys, and redraw learning_curve.png from `history` (the run's earlier evaluations)."""

    def evaluate_and_track(policy, timestep: int) -> dict[str, float]:
        scores = evaluate(policy, timestep)
        logged, messages = best.update(scores, timestep)
        scores.update(logged)
        for message in messages:
            print(message)
        history.append({"timestep": timestep, **scores})
        png = render_learning_curve(history)
        if png is not None:
            atomic_write(save_dir / CURVE_FILE, lambda handle: handle.write(png))
        return scores

    return evaluate_and_track


def build_generic(args, eval_seeds: list[int]):
    """(vector env, evaluate fn, metadata, description) for a gymnasium --env-id."""
    try:
        env = make_gym_vec_env(args.env_id, args.n_envs, args.vec_env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None

    def evaluate(policy, timestep: int) -> dict[str, float]:
        records = evaluate_over_seeds(args.env_id, policy.predict, args.eval_episodes, eval_seeds)
        return {EVAL_MEAN_RETURN: float(np.mean([r["return"] for r in records])),
                EVAL_MEAN_LENGTH: float(np.mean([r["length"] for r in records]))}

    return env, evaluate, {"env_id": args.env_id, "n_envs": args.n_envs}, f"{args.env_id} x{args.n_envs}"


def build_soccer(args, eval_seeds: list[int]):
    """(vector env, evaluate fn, metadata, description) for the soccer tasks."""
    try:
        tasks = parse_task_names(args.tasks)
        weights = parse_task_weights(args.task_weights) if args.task_weights else None
        task_list = build_task_list(args.n_envs, task_weights=weights, tasks=tasks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    trained = [t for t in tasks if t in task_list]
    command = command_options(args)
    outer = residual_outer(args, command)
    try:
        env = make_vec_env(task_list, seed=args.seed, vec_env=args.vec_env, action_mode=args.action_mode,
                           reward_profile=args.reward_profile, action_repeat=args.action_repeat, command=command,
                           max_episode_steps=args.max_episode_steps, sim=args.sim, workers=args.env_workers,
                           outer=outer)
    except ValueError as exc:  # bad or unreachable controller / macro files included (envs.hub.HubUnavailable)
        raise UsageError(str(exc)) from None

    def evaluate(policy, timestep: int) -> dict[str, float]:
        result = evaluate_soccer(policy.predict, trained, args.eval_episodes, eval_seeds,
                                 ktt_steps_weight=args.ktt_steps_weight, action_mode=args.action_mode,
                                 action_repeat=args.action_repeat, command=command,
                                 max_episode_steps=args.max_episode_steps, sim=args.sim, outer=outer)
        scores = {} if args.legacy_only_eval else competition_metrics(result)
        if not args.competition_only_eval:
            scores.update(legacy_metrics(result, args.steps_weight))
        return scores

    counts = ", ".join(f"{t} x{task_list.count(t)}" for t in trained)
    metadata = {"tasks": trained, "task_list": list(task_list), "action_mode": args.action_mode,
                "action_repeat": args.action_repeat, "reward_profile": args.reward_profile, "obs_dim": OBS_DIM,
                "sim": args.sim}
    if command is not None:
        metadata["command"] = dataclasses.asdict(command)
    if outer is not None:
        metadata[RESIDUAL_KEY] = args.residual_striker
    return env, evaluate, metadata, f"soccer ({counts})"


def residual_outer(args, command: CommandOptions | None):
    """The residual-striker wrapper of --residual-striker (None without it), its flag combination checked: the
    striker commands our walk engine at its own limits, without a kick macro."""
    if args.residual_striker is None:
        return None
    if command is None or not command.walk:
        raise UsageError("--residual-striker needs --action-mode command --low-level-controller walk")
    if args.command_limits is not None or command.macro is not None:
        raise UsageError("--residual-striker plays the striker at the walk engine's own limits and without a kick "
                         "macro: drop --command-limits / --macro")
    try:
        return residual_wrapper(args.residual_striker, args.action_repeat)
    except ValueError as exc:
        raise UsageError(f"--residual-striker: {exc}") from None


def macro_reward(args) -> MacroReward | None:
    """The --macro-reward-* bonus (None without --macro-reward-bonus), checked against the reward profile."""
    if args.macro_reward_bonus is None:
        for flag in MACRO_REWARD_FLAGS:
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} needs --macro-reward-bonus")
        return None
    profile = args.reward_profile
    if profile == "env" or (profile == "competition" and not args.allow_macro_bonus_with_competition):
        raise UsageError("--macro-reward-bonus needs --reward-profile pressure_shot or tight, or competition with "
                         "--allow-macro-bonus-with-competition")
    fields = {"bonus": args.macro_reward_bonus, "radius": args.macro_reward_radius,
              "alignment": args.macro_reward_alignment_threshold, "cap": args.macro_reward_cap}
    try:
        return MacroReward(**{k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def command_options(args) -> CommandOptions | None:
    """The command mode's options from the flags (None in the other modes, where those flags are errors)."""
    if args.action_mode != "command":
        for flag in COMMAND_FLAGS:
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to --action-mode command only")
        return None
    options = {"controller": args.low_level_controller, "controller_config": args.controller_config,
               "macro": args.macro, "walk_params": args.walk_params}
    if args.gait_threshold is not None:
        options["gait_threshold"] = args.gait_threshold
    options["macro_reward"] = macro_reward(args)
    if args.command_limits is not None:
        try:
            limits = [float(v) for v in args.command_limits.split(",")]
        except ValueError:
            limits = []
        if len(limits) != 3:
            raise UsageError(f"--command-limits must be three numbers VX,VY,YAW, got {args.command_limits!r}")
        options.update(max_vx=limits[0], max_vy=limits[1], max_yaw=limits[2])
    elif args.low_level_controller == WALK_CONTROLLER:  # a command of 1 is the engine's top speed
        options.update(zip(("max_vx", "max_vy", "max_yaw"), WALK_COMMAND_LIMITS[1].tolist(), strict=True))
    try:
        return CommandOptions(**options)
    except ValueError as exc:
        raise UsageError(f"--action-mode command: {exc}") from None


if __name__ == "__main__":
    sys.exit(run_cli(main))
