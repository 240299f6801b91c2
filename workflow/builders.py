"""What a training run is built from: the algorithm config, the envs with their evaluation, the save dir, and
the best-model tracking of the soccer evaluations.

Every function takes the run's TrainOptions (defaults filled) and raises UsageError with one line on bad input.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.command import WALK_CONTROLLER, CommandOptions, MacroReward
from envs.factory import make_vec_env
from envs.preprocess import OBS_DIM
from envs.tasks import build_task_list, parse_task_names, parse_task_weights
from envs.walk import COMMAND_LIMITS as WALK_COMMAND_LIMITS
from rlcore.cliutil import UsageError
from rlcore.config import AlgoConfig
from rlcore.fileio import SaveDirLock, atomic_write, check_output_dir, remove_stale_temp_files
from rlcore.gym_env import evaluate_over_seeds, make_gym_vec_env
from rlcore.metrics import EVAL_MEAN_LENGTH, EVAL_MEAN_RETURN
from rlcore.precision import compute_dtype
from scoring.curves import render_learning_curve
from scoring.eval_metrics import competition_metrics, legacy_metrics
from scoring.harness import evaluate as evaluate_soccer
from skills.residual import RESIDUAL_KEY, residual_wrapper
from submission.best import BestModels
from workflow.options import OPTION_FIELDS, TrainOptions, config_path_for
from workflow.presets import EVAL_SEED_POOL

CURVE_FILE = "learning_curve.png"
"""The evaluation scores per task against timesteps, redrawn after every evaluation (scoring/curves.py)."""
MACRO_REWARD_OPTIONS = ("macro_reward_radius", "macro_reward_alignment_threshold", "macro_reward_cap")
COMMAND_OPTIONS = ("low_level_controller", "controller_config", "command_limits", "gait_threshold", "macro",
                   "walk_params", "residual_striker", "macro_reward_bonus", *MACRO_REWARD_OPTIONS)
"""Options of the command action mode only."""

EvalFn = Callable[[Any, int], dict[str, float]]


@dataclass
class RunEnv:
    """The training envs of a run, with what goes with them."""

    env: gym.vector.VectorEnv
    evaluate: EvalFn
    """evaluate(policy, timestep) -> scores."""
    metadata: dict[str, Any]
    """What the run trained on (saved in every checkpoint and model)."""
    description: str
    """For the progress line: 'soccer (goalie_penalty_kick x2, ...)' or 'Pendulum-v1 x1'."""


def algo_config(options: TrainOptions, base: AlgoConfig) -> AlgoConfig:
    """`base` with every algorithm option the user set applied (check_options has refused those that do not
    apply to the algorithm)."""
    changes: dict[str, Any] = {}
    for name, f in OPTION_FIELDS.items():
        value = getattr(options, name)
        if f.metadata["config"] is None or value is None or value is False:
            continue
        changes[config_path_for(name, options.algo)] = value
    try:
        return _replace_paths(base, changes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _replace_paths(cfg: Any, changes: dict[str, Any]) -> Any:
    """dataclasses.replace through nested configs: {'buffer.batch_size': 64, 'gamma': 0.9}."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = _replace_paths(getattr(cfg, head), sub)
    return dataclasses.replace(cfg, **top) if top else cfg


def check_speed_options(cfg: AlgoConfig, device: torch.device) -> None:
    """--precision bf16 needs a device with native bf16, --cuda-graphs a CUDA device (UsageError otherwise)."""
    if getattr(cfg, "cuda_graphs", False) and device.type != "cuda":
        raise UsageError(f"--cuda-graphs needs a CUDA device; the run's device is {device}")
    try:
        compute_dtype(getattr(cfg, "precision", "fp32"), device)
    except ValueError as exc:
        raise UsageError(f"--precision bf16 on {device}: {exc}") from None


def eval_seeds(options: TrainOptions) -> list[int]:
    """The evaluation seeds: --eval-seeds, or --eval-seeds-random distinct ones drawn from --seed."""
    if options.eval_seeds_random:
        draw = np.random.default_rng(options.seed).choice(EVAL_SEED_POOL, size=options.eval_seeds_random,
                                                          replace=False)
        return sorted(int(s) for s in draw)
    return list(options.eval_seeds)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
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


def build_run_env(options: TrainOptions) -> RunEnv:
    """The training envs and their evaluation: the soccer tasks, or a gymnasium --env-id."""
    return build_soccer(options) if options.soccer else build_generic(options)


def build_generic(options: TrainOptions) -> RunEnv:
    """The vector env and evaluation of a gymnasium --env-id."""
    try:
        env = make_gym_vec_env(options.env_id, options.n_envs, options.vec_env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    seeds = eval_seeds(options)

    def evaluate(policy, timestep: int) -> dict[str, float]:
        records = evaluate_over_seeds(options.env_id, policy.predict, options.eval_episodes, seeds)
        return {EVAL_MEAN_RETURN: float(np.mean([r["return"] for r in records])),
                EVAL_MEAN_LENGTH: float(np.mean([r["length"] for r in records]))}

    return RunEnv(env, evaluate, {"env_id": options.env_id, "n_envs": options.n_envs},
                  f"{options.env_id} x{options.n_envs}")


def build_soccer(options: TrainOptions) -> RunEnv:
    """The vector env of the soccer tasks and their official-score evaluation."""
    try:
        tasks = parse_task_names(options.tasks)
        weights = parse_task_weights(options.task_weights) if options.task_weights else None
        task_list = build_task_list(options.n_envs, task_weights=weights, tasks=tasks)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    trained = [t for t in tasks if t in task_list]
    command = command_options(options)
    outer = residual_outer(options, command)
    try:
        env = make_vec_env(task_list, seed=options.seed, vec_env=options.vec_env, action_mode=options.action_mode,
                           reward_profile=options.reward_profile, action_repeat=options.action_repeat,
                           command=command, max_episode_steps=options.max_episode_steps, sim=options.sim,
                           workers=options.env_workers, outer=outer)
    except ValueError as exc:  # bad or unreachable controller / macro files included (envs.hub.HubUnavailable)
        raise UsageError(str(exc)) from None
    seeds = eval_seeds(options)

    def evaluate(policy, timestep: int) -> dict[str, float]:
        result = evaluate_soccer(policy.predict, trained, options.eval_episodes, seeds,
                                 ktt_steps_weight=options.ktt_steps_weight, action_mode=options.action_mode,
                                 action_repeat=options.action_repeat, command=command,
                                 max_episode_steps=options.max_episode_steps, sim=options.sim, outer=outer)
        scores = {} if options.legacy_only_eval else competition_metrics(result)
        if not options.competition_only_eval:
            scores.update(legacy_metrics(result, options.steps_weight))
        return scores

    counts = ", ".join(f"{t} x{task_list.count(t)}" for t in trained)
    metadata = {"tasks": trained, "task_list": list(task_list), "action_mode": options.action_mode,
                "action_repeat": options.action_repeat, "reward_profile": options.reward_profile, "obs_dim": OBS_DIM,
                "sim": options.sim}
    if command is not None:
        metadata["command"] = dataclasses.asdict(command)
    if outer is not None:
        metadata[RESIDUAL_KEY] = options.residual_striker
    return RunEnv(env, evaluate, metadata, f"soccer ({counts})")


def residual_outer(options: TrainOptions, command: CommandOptions | None):
    """The residual-striker wrapper of --residual-striker (None without it), its option combination checked: the
    striker commands our walk engine at its own limits, without a kick macro."""
    if options.residual_striker is None:
        return None
    if command is None or not command.walk:
        raise UsageError("--residual-striker needs --action-mode command --low-level-controller walk")
    if options.command_limits is not None or command.macro is not None:
        raise UsageError("--residual-striker plays the striker at the walk engine's own limits and without a kick "
                         "macro: drop --command-limits / --macro")
    try:
        return residual_wrapper(options.residual_striker, options.action_repeat)
    except ValueError as exc:
        raise UsageError(f"--residual-striker: {exc}") from None


def macro_reward(options: TrainOptions) -> MacroReward | None:
    """The --macro-reward-* bonus (None without --macro-reward-bonus), checked against the reward profile."""
    if options.macro_reward_bonus is None:
        for name in MACRO_REWARD_OPTIONS:
            if getattr(options, name) is not None:
                raise UsageError(f"--{name.replace('_', '-')} needs --macro-reward-bonus")
        return None
    profile = options.reward_profile
    if profile == "env" or (profile == "competition" and not options.allow_macro_bonus_with_competition):
        raise UsageError("--macro-reward-bonus needs --reward-profile pressure_shot or tight, or competition with "
                         "--allow-macro-bonus-with-competition")
    fields = {"bonus": options.macro_reward_bonus, "radius": options.macro_reward_radius,
              "alignment": options.macro_reward_alignment_threshold, "cap": options.macro_reward_cap}
    try:
        return MacroReward(**{k: v for k, v in fields.items() if v is not None})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def command_options(options: TrainOptions) -> CommandOptions | None:
    """The command mode's options (None in the other modes, where the command options are errors)."""
    if options.action_mode != "command":
        for name in COMMAND_OPTIONS:
            if getattr(options, name) is not None:
                raise UsageError(f"--{name.replace('_', '-')} applies to --action-mode command only")
        return None
    fields: dict[str, Any] = {"controller": options.low_level_controller,
                              "controller_config": options.controller_config, "macro": options.macro,
                              "walk_params": options.walk_params, "macro_reward": macro_reward(options)}
    if options.gait_threshold is not None:
        fields["gait_threshold"] = options.gait_threshold
    if options.command_limits is not None:
        fields.update(zip(("max_vx", "max_vy", "max_yaw"), options.command_limits, strict=True))
    elif options.low_level_controller == WALK_CONTROLLER:  # a command of 1 is the engine's top speed
        fields.update(zip(("max_vx", "max_vy", "max_yaw"), WALK_COMMAND_LIMITS[1].tolist(), strict=True))
    try:
        return CommandOptions(**fields)
    except ValueError as exc:
        raise UsageError(f"--action-mode command: {exc}") from None


def track_evaluations(evaluate: EvalFn, save_dir: Path, best: BestModels, history: list[dict]) -> EvalFn:
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
