"""The soccer workflow's defaults and whole-run recipes: the only home of the numbers a run starts from.

Three layers make a run's settings, the later ones winning: the algorithm config's defaults (rlcore/config.py),
this module's presets (the soccer workflow's, or the generic path's for --env-id), the user's options (flags,
a --config YAML file, a recipe). The warm-start recipe (how an actor that starts from behaviour cloning, a zip
or the striker is fine-tuned) lives here too; the per-algorithm part of it (how long such an actor waits) is a
fact of each algorithm in rlcore/registry.py.
"""

from __future__ import annotations

import dataclasses

from rlcore.cliutil import UsageError
from rlcore.config import AlgoConfig
from rlcore.registry import algorithm_spec

SOCCER_DEFAULTS = {"total_timesteps": 1_000_000, "n_envs": 6, "eval_freq": 50_000, "eval_episodes": 2,
                   "eval_seeds": "0,1,2,3", "sim": "fast"}
"""Run defaults on the soccer tasks, from the seed pipeline (docs/seed_pipeline.md), except eval_episodes:
per eval seed per task, 2 instead of the seed's 8 (which cost 96 full episodes per evaluation)."""
GENERIC_DEFAULTS = {"total_timesteps": 1_000_000, "n_envs": 1, "eval_freq": 0, "eval_episodes": 10,
                    "eval_seeds": "0"}
"""Run defaults on a gymnasium --env-id."""
SOCCER_NET_ARCH = (256, 256, 128)
"""The seed's soccer net (docs/seed_pipeline.md); a cloned actor must have the same (bc.train's default)."""
SOCCER_LEARNING_RATE = 3e-4
"""Every algorithm's learning rate on the soccer tasks (the seed's)."""
SOCCER_BATCH_SIZE = 256
"""Minibatch size on the soccer tasks, every algorithm (the seed's)."""
SOCCER_BUFFER = {"buffer_size": 500_000, "learning_starts": 20_000}
"""The off-policy algorithms' replay buffer on the soccer tasks (the seed's 500k transitions, 20k warm-up)."""

BC_ANCHOR_COEF = 10.0
"""Anchor weight when fine-tuning from --bc-weights; --bc-anchor-coef overrides."""
BC_ACTOR_COEF = 100.0
"""BC weight in the actor loss when demonstrations are prefilled; --bc-actor-coef overrides. Far above TD3+BC's
0.4 on purpose: the cloned stand is fragile, and a TD3 fine-tune from it (BC file + prefill + 10k critic-only
steps) fell with 0.4 and stood at the BC score (-0.992 on both penalty kicks) with 100 (docs/results.md)."""
EVAL_SEED_POOL = 10_000
"""--eval-seeds-random draws distinct seeds from [0, EVAL_SEED_POOL)."""

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


def soccer_config(algo: str) -> AlgoConfig:
    """The algorithm config the soccer workflow starts from: the seed's net, learning rate and batch size and,
    off-policy, its replay buffer."""
    spec = algorithm_spec(algo)
    cfg = spec.config()
    net = dataclasses.replace(cfg.net, net_arch=SOCCER_NET_ARCH)
    if spec.on_policy:
        return dataclasses.replace(cfg, net=net, learning_rate=SOCCER_LEARNING_RATE, batch_size=SOCCER_BATCH_SIZE)
    buffer = dataclasses.replace(cfg.buffer, batch_size=SOCCER_BATCH_SIZE, **SOCCER_BUFFER)
    return dataclasses.replace(cfg, net=net, learning_rate=SOCCER_LEARNING_RATE, buffer=buffer)


def base_config(algo: str, soccer: bool) -> AlgoConfig:
    """The config a fresh run starts from: the soccer preset, or the algorithm's own defaults for --env-id."""
    return soccer_config(algo) if soccer else algorithm_spec(algo).config()


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
