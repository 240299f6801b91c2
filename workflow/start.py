"""Where a run's algorithm starts from, in one place: a fresh start, a checkpoint.pt (resume), an SB3 zip or a BC
file (warm starts), normaliser statistics, or the zero correction of the residual striker.

`read_start` reads and checks the files once; `start_config` gives the config the run starts from (the
checkpoint's, the zip's network, or the preset), `warm_start_recipe` applies the fine-tuning recipe of a
warm-started actor (workflow/presets.py), `check_start` checks the files against the built env, and
`apply_start` brings a freshly built algorithm to its starting point.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bc.cloning import load_bc
from bc.dataset import load_demos
from bc.warmstart import check_bc_compatible, load_bc_into, unseen_tasks, validate_bc_flags
from rlcore.checkpoint import check_state_fits, checkpoint_config, load_checkpoint
from rlcore.cliutil import UsageError
from rlcore.config import AlgoConfig, config_to_dict
from rlcore.normstats import read_normalizer_stats
from rlcore.registry import algorithm_spec
from rlcore.runner import RunConfig
from skills.residual import RESIDUAL_KEY
from submission import WarmStart
from workflow.options import TrainOptions
from workflow.presets import BC_ACTOR_COEF, BC_ANCHOR_COEF, base_config


@dataclass(frozen=True)
class Start:
    """The files a run starts from (each None when not given)."""

    resume: dict[str, Any] | None
    """A checkpoint.pt's payload (--resume-model X.pt): the whole run state."""
    zip: WarmStart | None
    """An SB3 zip (--resume-model X.zip): networks and the normaliser saved beside it."""
    bc: dict[str, Any] | None
    """A BC payload (--bc-weights): the actor and its normaliser."""
    stats: dict[str, Any] | None
    """Normaliser statistics (--vecnormalize-path)."""

    @property
    def resuming(self) -> bool:
        return self.resume is not None

    @property
    def warm(self) -> bool:
        """The actor starts from a policy (not at random)."""
        return self.zip is not None or self.bc is not None


def read_start(options: TrainOptions) -> Start:
    """Read and check --resume-model, --bc-weights and --vecnormalize-path against the options (UsageError)."""
    resume = zip_start = None
    if options.resume_model and options.resume_model.endswith(".zip"):
        try:
            zip_start = WarmStart.read(options.resume_model, options.algo)
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
    elif options.resume_model:
        try:
            resume = load_checkpoint(Path(options.resume_model))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if resume["algo"] != options.algo:
            raise UsageError(f"--resume-model holds a {resume['algo']} checkpoint, but --algo is {options.algo}")
        check_resume_options(options, resume)
    stats = read_vecnormalize(options, resuming=resume is not None)
    return Start(resume, zip_start, None, stats)


def start_config(options: TrainOptions, start: Start) -> AlgoConfig:
    """The config before the user's algorithm options: the checkpoint's, or the preset with a zip's network."""
    if start.resume is not None:
        return checkpoint_config(start.resume)
    base = base_config(options.algo, options.soccer)
    return start.zip.config(base) if start.zip is not None else base


def check_resume_options(options: TrainOptions, resume: dict) -> None:
    """Options that contradict a checkpoint.pt are errors: the network, normalisation, env, action mode and repeat
    are the checkpoint's, and --total-timesteps counts the whole run (so it cannot be below the steps done)."""
    cfg, meta = checkpoint_config(resume), resume["metadata"]
    done = resume["runner"].get("timesteps", 0)
    where = f"--resume-model {options.resume_model}"
    if options.total_timesteps < done:
        raise UsageError(f"{where} has done {done} timesteps; --total-timesteps counts the whole run, so it must be "
                         f">= {done} (got {options.total_timesteps})")
    if options.net_arch is not None and options.net_arch != cfg.net.net_arch:
        given = ",".join(map(str, options.net_arch))
        raise UsageError(f"{where} has the network {','.join(map(str, cfg.net.net_arch))}; a resumed run keeps it: "
                         f"drop --net-arch {given}")
    if options.activation is not None and options.activation != cfg.net.activation:
        raise UsageError(f"{where} uses the {cfg.net.activation} activation; drop --activation {options.activation}")
    if options.normalize_obs and not cfg.obs_norm.enabled:
        raise UsageError(f"{where} was trained without observation normalisation; drop --normalize-obs (or start a "
                         "new run)")
    trained_env = meta.get("env_id")
    if (trained_env or None) != (options.env_id or None):
        trained = f"--env-id {trained_env}" if trained_env else "the soccer tasks"
        raise UsageError(f"{where} was trained on {trained} (observations of shape {tuple(resume['obs_shape'])}), "
                         f"not on {'--env-id ' + options.env_id if options.env_id else 'the soccer tasks'}")
    if options.soccer:
        for name, value in (("action_mode", options.action_mode), ("action_repeat", options.action_repeat)):
            if name in meta and meta[name] != value:
                raise UsageError(f"{where} was trained with --{name.replace('_', '-')} {meta[name]}; pass it again "
                                 f"(got {value})")
        if meta.get(RESIDUAL_KEY) != options.residual_striker:
            trained = (f"--residual-striker {meta[RESIDUAL_KEY]}" if meta.get(RESIDUAL_KEY) is not None
                       else "no --residual-striker")
            raise UsageError(f"{where} was trained with {trained}; a resumed run keeps it")


def read_vecnormalize(options: TrainOptions, *, resuming: bool) -> dict | None:
    """The statistics of --vecnormalize-path (None without it); options that contradict it are errors."""
    if not options.vecnormalize_path:
        return None
    if not options.normalize_obs:
        raise UsageError("--vecnormalize-path needs --normalize-obs")
    if resuming:
        raise UsageError("--vecnormalize-path cannot be used with a checkpoint.pt --resume-model: the checkpoint "
                         "holds its own normaliser statistics")
    if options.bc_weights:
        raise UsageError("--vecnormalize-path and --bc-weights both set the normaliser: the BC file carries the "
                         "statistics its actor was trained with")
    try:
        return read_normalizer_stats(options.vecnormalize_path)
    except ValueError as exc:
        raise UsageError(f"--vecnormalize-path: {exc}") from None


def uses_prefill(options: TrainOptions) -> bool:
    """Replay prefill applies to the off-policy algorithms (on-policy ones warn and ignore it)."""
    return bool(options.bc_replay_dataset) and not algorithm_spec(options.algo).on_policy


def warm_start_recipe(options: TrainOptions, cfg: AlgoConfig, *, resuming: bool) -> AlgoConfig:
    """Check the BC options together; size the demo region; give a warm-started actor the recipe's defaults (BC
    weight with prefilled demonstrations, anchor to the BC actor, a critic-only start)."""
    try:
        for warning in validate_bc_flags(options.algo, bc_weights=options.bc_weights,
                                         freeze_bc_layers=options.freeze_bc_layers,
                                         freeze_until_step=options.freeze_until_step,
                                         bc_replay_dataset=options.bc_replay_dataset,
                                         bc_replay_fraction=options.bc_replay_fraction, resuming=resuming):
            print(f"warning: {warning}", file=sys.stderr)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not (math.isfinite(options.bc_init_std) and options.bc_init_std > 0):
        raise UsageError(f"--bc-init-std must be finite and > 0, got {options.bc_init_std}")
    if options.bc_weights and not Path(options.bc_weights).is_file():
        raise UsageError(f"--bc-weights: no such file {options.bc_weights}")
    if uses_prefill(options):
        cfg = dataclasses.replace(cfg, buffer=dataclasses.replace(cfg.buffer,
                                                                  demo_fraction=options.bc_replay_fraction))
        if options.bc_actor_coef is None:
            print(f"note: --bc-replay-dataset: the actor loss clones the demonstrations with weight {BC_ACTOR_COEF} "
                  "(--bc-actor-coef)")
            cfg = dataclasses.replace(cfg, bc_coef=BC_ACTOR_COEF)
    if options.bc_anchor_coef and not (options.bc_weights or (options.resume_model or "").endswith(".zip")
                                       or options.residual_striker is not None):
        raise UsageError("--bc-anchor-coef needs a warm-started actor: --bc-weights, a .zip --resume-model or "
                         "--residual-striker (whose anchor is the zero correction)")
    if options.bc_weights and options.bc_anchor_coef is None and not resuming:
        print(f"note: --bc-weights: the actor is anchored to the BC actor with weight {BC_ANCHOR_COEF} "
              "(--bc-anchor-coef)")
        cfg = dataclasses.replace(cfg, anchor_coef=BC_ANCHOR_COEF)
    if (options.bc_weights or options.residual_striker is not None) and options.actor_learning_starts is None:
        spec = algorithm_spec(options.algo)
        print(f"note: {'--bc-weights' if options.bc_weights else '--residual-striker'}: the actor waits "
              f"{spec.bc_actor_learning_starts} {spec.actor_learning_starts_unit} (--actor-learning-starts)")
        cfg = dataclasses.replace(cfg, actor_learning_starts=spec.bc_actor_learning_starts)
    return cfg


def run_config(options: TrainOptions, start: Start) -> RunConfig:
    """The runner's schedule (UsageError on bad values): a warm-started actor skips the random warm-up."""
    try:
        return RunConfig(total_timesteps=options.total_timesteps, seed=options.seed, eval_freq=options.eval_freq,
                         checkpoint_freq=options.checkpoint_freq, log_interval=options.log_interval,
                         save_replay=options.save_replay, random_warmup=start.zip is None and not options.bc_weights)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def check_start(options: TrainOptions, start: Start, cfg: AlgoConfig, metadata: dict, spaces) -> Start:
    """Check the start files against the final config and the built env (ValueError / UsageError); read the
    BC file and the demonstrations. Returns the start with its BC payload."""
    obs_dim, low, _, real_low, real_high = spaces
    resume = start.resume
    if resume is not None:
        try:
            check_state_fits(resume, cfg, where=options.resume_model)
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
        if resume["obs_shape"] != [obs_dim]:
            raise ValueError(f"--resume-model was trained on observations of shape {tuple(resume['obs_shape'])}, "
                             f"the env has ({obs_dim},)")
        if len(resume["action_low"]) != len(low):
            raise ValueError(f"--resume-model acts in {len(resume['action_low'])} dimensions, the env in {len(low)}")
    if start.zip is not None:
        start.zip.check(cfg, obs_dim, real_low, real_high)
    if start.stats is not None and len(start.stats["mean"]) != obs_dim:
        raise UsageError(f"--vecnormalize-path holds statistics of {len(start.stats['mean'])}-dim observations, "
                         f"the env gives {obs_dim}")
    bc_payload = load_bc(options.bc_weights) if options.bc_weights else None
    if bc_payload is not None:
        check_bc_compatible(bc_payload, algo=options.algo, net=cfg.net, obs_norm=cfg.obs_norm, obs_dim=obs_dim,
                            act_dim=len(low), action_mode=options.action_mode if options.soccer else None)
        unseen = unseen_tasks(bc_payload, metadata["tasks"]) if options.soccer else []
        if unseen:
            print(f"warning: --bc-weights: the BC data holds no {', '.join(unseen)} episodes; its normaliser "
                  "will shift under the cloned actor (record demonstrations on every trained task)", file=sys.stderr)
    if uses_prefill(options):
        load_demos(options.bc_replay_dataset, obs_dim=obs_dim, act_dim=len(low))
    if resume is not None:
        for note in resume_notes(resume, cfg, metadata):
            print(f"note: --resume-model: {note}")
    return dataclasses.replace(start, bc=bc_payload)


def resume_notes(resume: dict, cfg: AlgoConfig, metadata: dict) -> list[str]:
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


def apply_start(options: TrainOptions, start: Start, algo) -> None:
    """Bring a freshly built algorithm to its starting point: a checkpoint's state, or a zip warm start,
    normaliser statistics and a BC actor (or the residual striker's zero correction); then the warm-start anchor
    and the BC freeze (UsageError on bad values)."""
    if start.resume is not None:
        algo.load_state_dict(start.resume["algo_state"])  # anchor and freeze included (check_state_fits passed)
        for optimizer in algo.optimizers():
            for group in optimizer.param_groups:  # a changed --lr applies from now on (resume_notes says so)
                group["lr"] = algo.cfg.learning_rate
        return
    if start.zip is not None:
        try:
            print(start.zip.apply(algo))
        except ValueError as exc:
            raise UsageError(f"--resume-model: {exc}") from None
    if start.stats is not None:
        algo.normalizer.load_stats(start.stats)
        print(f"normaliser starts from {options.vecnormalize_path} (count {start.stats['count']:,.0f}); the file is "
              "only read")
    if start.bc is not None:
        print(load_bc_into(algo, start.bc, action_mode=options.action_mode if options.soccer else None,
                           init_std=options.bc_init_std))
    elif start.zip is None and options.soccer and options.residual_striker is not None:
        algo.zero_action_head()
        print("note: --residual-striker: the actor starts at a zero correction (it plays the striker)")
    if getattr(algo.cfg, "anchor_coef", 0) > 0:
        algo.set_anchor()
    if start.bc is not None and options.freeze_bc_layers:
        try:
            algo.set_freeze(options.freeze_bc_layers, options.freeze_until_step)
        except ValueError as exc:
            raise UsageError(f"--freeze-bc-layers: {exc}") from None
