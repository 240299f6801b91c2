"""RL warm start from a BC payload, and the checks of train.py's BC flags.

`load_bc_into(algo, path)` copies the BC actor into the algorithm so that its deterministic action (through
algo.policy, normaliser included) EQUALS the BC network's output:
* td3: actor.mu and actor_target.mu;
* sac: actor.latent_pi and actor.mu;
* ppo: actor.mlp_extractor.policy_net and actor.action_net (the value network keeps its initialisation);
and the BC normaliser (statistics, clip, epsilon) replaces the algorithm's. BC fits only the mean, so the
exploration spread of SAC and PPO is SET, not left at its initialisation: a standard deviation of `init_std`
(default BC_INIT_STD) on every action dim (SAC: log_std head with zero weights and bias log(init_std), on the
pre-tanh action; PPO: log_std = log(init_std)). Their defaults, std about 1 on a [-1, 1] action, knock a
cloned stand over within a few steps; 0.1 is the executed-action noise the recorded demonstrations carried,
the noise a clone of them has learnt to recover from. Anything that would break the
equality is an error before a single weight is copied: another algorithm, net_arch or activation, other
observation or action widths, another action mode, or normalisation on one side only. Nothing is ever loaded
partially (docs/seed_pipeline.md, fixes 13 and 15).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from bc.cloning import bc_prefixes, load_bc
from envs.preprocess import OBS_SLICES
from envs.tasks import get_task
from rlcore.config import NetConfig, ObsNormConfig
from rlcore.registry import algorithm_spec


def validate_bc_flags(algo: str, *, bc_weights: str | None = None, freeze_bc_layers: int = 0,
                      freeze_until_step: int = 0, bc_replay_dataset: str | None = None,
                      bc_replay_fraction: float = 0.0, resuming: bool = False) -> list[str]:
    """Check train.py's BC flags together; ValueError on a contradiction, else the warnings to print.

    --bc-replay-fraction must be in [0, 1]; with a dataset it must be > 0 and without one it must be 0; for
    TD3/SAC it must be < 1 (the region and the ring share buffer_size: 1 would leave the ring no rows).
    PPO has no replay buffer: the replay flags are ignored with a warning (the seed's behaviour).
    --freeze-bc-layers needs --bc-weights; --freeze-until-step needs --freeze-bc-layers.
    --bc-weights starts a new run: a resumed run already holds its actor.
    """
    warnings: list[str] = []
    on_policy = algorithm_spec(algo).on_policy
    if not (math.isfinite(bc_replay_fraction) and 0.0 <= bc_replay_fraction <= 1.0):
        raise ValueError(f"--bc-replay-fraction must be in [0, 1], got {bc_replay_fraction}")
    if bc_replay_fraction == 1.0 and not on_policy:
        raise ValueError("--bc-replay-fraction 1 gives the whole replay buffer to the demonstrations and leaves none "
                         "for the agent's own transitions; use a value below 1")
    if bc_replay_fraction > 0 and not bc_replay_dataset:
        raise ValueError("--bc-replay-fraction needs --bc-replay-dataset")
    if bc_replay_dataset and bc_replay_fraction == 0:
        raise ValueError("--bc-replay-dataset needs --bc-replay-fraction > 0 (the share of the replay buffer "
                         "and of each batch given to the demonstrations)")
    if bc_replay_dataset and on_policy:
        warnings.append(f"{algo.upper()} has no replay buffer: ignoring --bc-replay-dataset and --bc-replay-fraction")
    if freeze_bc_layers < 0:
        raise ValueError(f"--freeze-bc-layers must be >= 0, got {freeze_bc_layers}")
    if freeze_until_step < 0:
        raise ValueError(f"--freeze-until-step must be >= 0, got {freeze_until_step}")
    if freeze_bc_layers > 0 and not bc_weights:
        raise ValueError("--freeze-bc-layers needs --bc-weights (only BC-initialised layers are worth freezing)")
    if freeze_until_step > 0 and freeze_bc_layers == 0:
        raise ValueError("--freeze-until-step needs --freeze-bc-layers > 0")
    if bc_weights and resuming:
        raise ValueError("--bc-weights initialises a new run; --resume-model already restores the actor")
    return warnings


def check_bc_compatible(payload: dict, *, algo: str, net: NetConfig, obs_norm: ObsNormConfig, obs_dim: int,
                        act_dim: int, action_mode: str | None = None) -> None:
    """ValueError naming the first difference that would make the RL policy differ from the BC net.

    Call it before building the algorithm for an early error; load_bc_into calls it again.
    `action_mode` None skips that check (the generic gymnasium path has none).
    """
    retrain = "retrain with python -m bc.train"
    if payload["algo"] != algo:
        raise ValueError(f"the BC weights are a {payload['algo']} actor but --algo is {algo}; "
                         f"{retrain} --algo {algo}")
    if tuple(payload["net_arch"]) != tuple(net.net_arch):
        raise ValueError(f"BC net_arch {','.join(map(str, payload['net_arch']))} differs from the RL --net-arch "
                         f"{','.join(map(str, net.net_arch))}; {retrain} --net-arch "
                         f"{','.join(map(str, net.net_arch))}")
    if payload["activation"] != net.activation:
        raise ValueError(f"BC activation {payload['activation']} differs from the RL activation {net.activation}")
    if payload["obs_dim"] != obs_dim:
        raise ValueError(f"the BC net takes {payload['obs_dim']}-dim observations, the env gives {obs_dim}")
    if payload["action_dim"] != act_dim:
        raise ValueError(f"the BC net outputs {payload['action_dim']}-dim actions, the env takes {act_dim}")
    if action_mode is not None and payload.get("action_mode") not in (None, action_mode):
        raise ValueError(f"the BC net was trained on {payload['action_mode']} actions but --action-mode is "
                         f"{action_mode}")
    bc_norm = payload["normalizer"]["_extra_state"]
    if bool(bc_norm["enabled"]) != obs_norm.enabled:
        raise ValueError("the BC net was trained with --normalize-obs; pass --normalize-obs to train.py too"
                         if bc_norm["enabled"] else
                         "the BC net was trained without --normalize-obs; drop --normalize-obs or "
                         f"{retrain} --normalize-obs")
    if obs_norm.enabled and (bc_norm["clip"] != obs_norm.clip or bc_norm["epsilon"] != obs_norm.epsilon):
        raise ValueError(f"BC normaliser clip/epsilon ({bc_norm['clip']}, {bc_norm['epsilon']}) differ from the "
                         f"RL run's ({obs_norm.clip}, {obs_norm.epsilon})")


def unseen_tasks(payload: dict, tasks: list[str]) -> list[str]:
    """The tasks among `tasks` the BC data never showed (their one-hot mean is 0 in the BC normaliser).

    Fine-tuning on such a task moves the running normaliser's statistics (and, with the BC file's near-zero
    variance on that one-hot, the normalised inputs of every task) under the cloned actor: measured, a stand
    cloned on the penalty kicks fell on them within 50k timesteps of a 3-task TD3 run (docs/results.md). Empty
    without a normaliser.
    """
    if not payload.get("normalize_obs"):
        return []
    mean = payload["normalizer"]["mean"][OBS_SLICES["task_one_hot"]]
    return [task for task in tasks if float(mean[get_task(task).index]) <= 0.0]


BC_INIT_STD = 0.1
"""Exploration std of a BC-warm-started SAC or PPO actor (module docstring)."""


def load_bc_into(algo, source: str | Path | dict, *, action_mode: str | None = None,
                 init_std: float = BC_INIT_STD) -> str:
    """Load BC weights and normaliser into a freshly built TD3, SAC or PPO; returns a line to print and log.

    `source` is a payload path or an already loaded payload. Every check happens before anything is copied.
    """
    payload = source if isinstance(source, dict) else load_bc(source, map_location=algo.device)
    obs_dim = algo.normalizer.mean.shape[0]
    act_dim = algo.policy.action_scale.shape[0]
    check_bc_compatible(payload, algo=algo.name, net=algo.cfg.net, obs_norm=algo.cfg.obs_norm, obs_dim=obs_dim,
                        act_dim=act_dim, action_mode=action_mode)
    spec = algorithm_spec(algo.name)
    targets = [algo.actor] + ([algo.actor_target] if spec.has_actor_target else [])
    state = payload["state_dict"]
    prefixes = bc_prefixes(algo.name)
    own = {k: v for k, v in targets[0].state_dict().items() if k.startswith(prefixes)}
    if set(state) != set(own):
        raise ValueError(f"BC state dict keys differ from the {algo.name} actor's: missing "
                         f"{sorted(set(own) - set(state))}, unexpected {sorted(set(state) - set(own))}")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise ValueError(f"BC weight {key} has shape {tuple(value.shape)}, the actor's is {tuple(own[key].shape)}")
    if not (math.isfinite(init_std) and init_std > 0):
        raise ValueError(f"the initial exploration std must be finite and > 0, got {init_std}")
    with torch.no_grad():
        for module in targets:
            current = module.state_dict()
            for key, value in state.items():
                current[key].copy_(value)
        spread = ""
        if spec.set_std is not None:  # BC fits only the mean: the spread is set (module docstring)
            spec.set_std(algo.actor, init_std)
            spread = f"; exploration std {init_std:g}"
    algo.normalizer.load_state_dict(payload["normalizer"])
    norm = "with its observation normaliser" if algo.normalizer.enabled else "without observation normalisation"
    return (f"loaded BC actor ({algo.name}, net {','.join(map(str, payload['net_arch']))}, {payload['activation']}, "
            f"{payload.get('action_mode') or 'unknown'} actions) {norm}{spread}")
