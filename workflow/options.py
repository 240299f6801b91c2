"""A training run's options, typed: one dataclass that is the flags of train.py, the keys of its --config YAML
file and the argument of `workflow.train(options)`.

Each field carries its flag's help, group and parser in its metadata; `build_parser` makes the command line from
them, so a flag, its YAML key and its option are one thing. A field left None means "the default": the workflow
preset (workflow/presets.py: soccer or --env-id) or the algorithm config's. The algorithm options name the
config field they set (`config`); whether they apply to an algorithm is read from that algorithm's config class
(a field it does not have is an option that does not apply), and `--help` prints the real defaults per algorithm
from the presets.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bc.warmstart import BC_INIT_STD
from envs.command import CommandOptions, MacroReward
from envs.factory import ACTION_MODES, REWARD_PROFILES
from envs.fastsim import SIMS
from envs.tasks import KTT_STEPS_WEIGHT
from rlcore.cliutil import (
    ArgumentParser,
    UsageError,
    config_value,
    finite_float,
    parse_net_arch,
    parse_seeds,
    seed_type,
)
from rlcore.config import PRECISIONS, BufferConfig, NetConfig, ObsNormConfig, field_docs
from rlcore.registry import ALGORITHM_SPECS, DEFAULT_ALGORITHM, algorithm_spec
from rlcore.runner import RunConfig
from scoring.harness import MAX_EPISODES
from scoring.legacy import LEGACY_STEPS_WEIGHT
from workflow.presets import (
    BC_ACTOR_COEF,
    BC_ANCHOR_COEF,
    DEFAULT_RECIPE,
    EVAL_SEED_POOL,
    GENERIC_DEFAULTS,
    RECIPES,
    SOCCER_DEFAULTS,
    soccer_config,
)

RUN, ALGO, BC, SOCCER, EVAL = ("run", "algorithm (unset = the preset default)", "behaviour cloning warm start",
                               "soccer tasks (when --env-id is absent)", "evaluation")
GROUPS = (RUN, ALGO, BC, SOCCER, EVAL)


def _typed(parse, what: str):
    """An argparse type from a parser that raises UsageError: its message becomes argparse's."""

    def convert(text: str):
        try:
            return parse(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = what
    return convert


def parse_command_limits(text: str) -> tuple[float, float, float]:
    """'VX,VY,YAW' -> three floats (UsageError otherwise)."""
    try:
        limits = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        limits = ()
    if len(limits) != 3:
        raise UsageError(f"--command-limits must be three numbers VX,VY,YAW, got {text!r}")
    return limits  # type: ignore[return-value]


def _seeds(text: str) -> tuple[int, ...]:
    return tuple(parse_seeds(text, "--eval-seeds"))


def opt(default: Any = None, help: str = "", *, group: str, parse: Any = None, choices: Sequence | None = None,
        metavar: str | None = None, config: str | tuple[str, ...] | None = None, needs: str | None = None,
        doc: bool = False) -> Any:
    """A TrainOptions field: its default, the flag's help text and group, the argparse type (booleans are
    switches) and, for algorithm options, the config field(s) it sets (the first the algorithm's config has),
    with `needs` a config field the algorithm must have for it to apply, with `doc` the help starting with that
    config field's docstring."""
    paths = (config,) if isinstance(config, str) else config
    return field(default=default, metadata={"help": help, "group": group, "parse": parse, "choices": choices,
                                            "metavar": metavar, "config": paths, "needs": needs, "doc": doc})


_NET, _BUF, _NORM = field_docs(NetConfig), field_docs(BufferConfig), field_docs(ObsNormConfig)
_RUN, _CMD, _MACRO = field_docs(RunConfig), field_docs(CommandOptions), field_docs(MacroReward)


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Everything a training run can be told (train.py's flags; None = the default, see the module docstring)."""

    # run
    algo: str = opt(DEFAULT_ALGORITHM, f"algorithm (default {DEFAULT_ALGORITHM})", group=RUN,
                    choices=sorted(ALGORITHM_SPECS))
    env_id: str | None = opt(help="train on this gymnasium env id instead of the soccer tasks", group=RUN)
    total_timesteps: int | None = opt(help=_RUN["total_timesteps"], group=RUN, parse=int)
    n_envs: int | None = opt(help="envs in the vector env", group=RUN, parse=int)
    vec_env: str = opt("sync", "gymnasium vector env kind (default sync: faster for 500 Hz envs)", group=RUN,
                       choices=("sync", "async"))
    seed: int = opt(0, _RUN["seed"] + " (default 0)", group=RUN, parse=seed_type)
    device: str = opt("auto", "torch device: auto, cpu, cuda, cuda:1 (default auto)", group=RUN)
    threads: int = opt(0, "torch CPU threads (default 0: torch's own, one per core). Use 1 when other jobs share "
                       "the CPU: OpenMP threads waiting for a busy core slowed updates several-fold on a shared "
                       "2-core machine (README Benchmarks)", group=RUN, parse=int)
    save_dir: str = opt("runs/latest", "output directory (default runs/latest)", group=RUN)
    resume_model: str | None = opt(help="continue from a checkpoint.pt (counters, schedules, normaliser), or "
                                   "warm-start from an SB3 .zip (networks, and the normaliser saved beside it; from "
                                   "timestep 0)", group=RUN)
    save_replay: bool = opt(False, _RUN["save_replay"], group=RUN)

    # algorithm: each sets the config field(s) named by `config`
    net_arch: tuple[int, ...] | None = opt(help="comma-separated hidden sizes, e.g. 256,256,128. " + _NET["net_arch"],
                                           group=ALGO, parse=_typed(parse_net_arch, "net_arch"),
                                           config="net.net_arch")
    activation: str | None = opt(help=_NET["activation"], group=ALGO, config="net.activation")
    lr: float | None = opt(help="learning rate", group=ALGO, parse=finite_float, config="learning_rate")
    gamma: float | None = opt(group=ALGO, parse=finite_float, config="gamma", doc=True)
    tau: float | None = opt(group=ALGO, parse=finite_float, config="tau", doc=True)
    batch_size: int | None = opt(help="minibatch size", group=ALGO, parse=int,
                                 config=("batch_size", "buffer.batch_size"))
    buffer_size: int | None = opt(help=_BUF["buffer_size"], group=ALGO, parse=int, config="buffer.buffer_size")
    learning_starts: int | None = opt(help=_BUF["learning_starts"], group=ALGO, parse=int,
                                      config="buffer.learning_starts")
    action_noise_sigma: float | None = opt(group=ALGO, parse=finite_float, config="exploration_noise", doc=True)
    ent_coef: float | None = opt(help="fixed alpha (SAC; unset: tuned) or entropy bonus weight (PPO)", group=ALGO,
                                 parse=finite_float, config="ent_coef")
    ent_coef_auto: bool = opt(False, "tune alpha automatically (the default)", group=ALGO, needs="ent_coef_init")
    ent_coef_min: float | None = opt(group=ALGO, parse=finite_float, config="ent_coef_min", doc=True)
    n_steps: int | None = opt(group=ALGO, parse=int, config="n_steps", doc=True)
    n_epochs: int | None = opt(group=ALGO, parse=int, config="n_epochs", doc=True)
    gae_lambda: float | None = opt(group=ALGO, parse=finite_float, config="gae_lambda", doc=True)
    clip_range: float | None = opt(group=ALGO, parse=finite_float, config="clip_range", doc=True)
    normalize_obs: bool = opt(False, _NORM["enabled"], group=ALGO, config="obs_norm.enabled")
    vecnormalize_path: str | None = opt(help="with --normalize-obs: start the normaliser from these statistics (an SB3 "
                                        "vecnormalize.pkl, or a model's .meta.json); read only, never written (every "
                                        "saved model carries its own statistics)", group=ALGO, metavar="FILE")
    train_freq: int | None = opt(group=ALGO, parse=int, config="train_freq", doc=True)
    gradient_steps: int | None = opt(help="(with many envs and a large --batch-size, several per vector step)",
                                     group=ALGO, parse=int, config="gradient_steps", doc=True)
    precision: str | None = opt(help="Taken from this flag, not from a --resume-model checkpoint.", group=ALGO,
                                choices=PRECISIONS, config="precision", doc=True)
    cuda_graphs: bool | None = opt(group=ALGO, config="cuda_graphs", doc=True)
    actor_learning_starts: int | None = opt(
        help="On-policy: rollouts that train only the value function. A warm-started actor (--bc-weights, "
        "--residual-striker) waits by default: " + ", ".join(f"{s.name} {s.bc_actor_learning_starts}" for s in
                                                             ALGORITHM_SPECS.values()) + ".",
        group=ALGO, parse=int, config="actor_learning_starts", doc=True)

    # behaviour cloning warm start
    bc_weights: str | None = opt(help="start the actor (and the normaliser) from a BC file of python -m bc.train",
                                 group=BC)
    bc_init_std: float = opt(BC_INIT_STD, "SAC/PPO: exploration std the BC-started actor begins with, on every "
                             f"action dim (BC fits only the mean; default {BC_INIT_STD}, the recorded demonstrations' "
                             "noise)", group=BC, parse=finite_float)
    freeze_bc_layers: int = opt(0, "keep the first N Linear layers of the BC actor fixed (needs --bc-weights)",
                                group=BC, parse=int)
    freeze_until_step: int = opt(0, "unfreeze after this many timesteps", group=BC, parse=int)
    bc_replay_dataset: str | None = opt(help="off-policy: demonstrations (.npz of python -m bc.record) kept in a "
                                        "protected part of the replay buffer", group=BC)
    bc_replay_fraction: float = opt(0.0, "share of the replay buffer and of each batch given to those "
                                    "demonstrations, in [0, 1)", group=BC, parse=finite_float)
    bc_actor_coef: float | None = opt(help=f"({BC_ACTOR_COEF} with --bc-replay-dataset)", group=BC,
                                      parse=finite_float, config="bc_coef", doc=True)
    bc_anchor_coef: float | None = opt(help=f"The anchor is the --bc-weights actor, a .zip --resume-model's, or the "
                                       f"zero correction of --residual-striker. ({BC_ANCHOR_COEF} with --bc-weights)",
                                       group=BC, parse=finite_float, config="anchor_coef", doc=True)

    # soccer tasks
    tasks: str = opt("all", "comma-separated task names, or all (default)", group=SOCCER)
    task_weights: str | None = opt(help="env slots per task, e.g. goalie_penalty_kick=2,kick_to_target=1 (allocated "
                                   "proportionally)", group=SOCCER)
    reward_profile: str = opt("competition", "training reward (default competition: dense, aligned with the official "
                              "score; base is the seed's name for env)", group=SOCCER,
                              choices=sorted(REWARD_PROFILES) + ["base"])
    action_mode: str = opt("torque", "what the policy outputs (default torque; command: (vx, vy, yaw rate) for the "
                           "walking controller, which may fire a kick macro)", group=SOCCER,
                           choices=sorted(ACTION_MODES))
    action_repeat: int = opt(1, "physics steps per decision (default 1)", group=SOCCER, parse=int)
    low_level_controller: str | None = opt(
        help="command mode: 'walk' for our walk engine (no download), or the walking controller's TorchScript file "
        "(default: robot/lower_t1_control.pt of the hub model SaiResearch/booster_soccer_models; needs "
        "huggingface_hub)", group=SOCCER, metavar="PATH|walk")
    walk_params: str | None = opt(help="with --low-level-controller walk: the walk engine's parameter file (default: "
                                  "the shipped envs/walk_params.json)", group=SOCCER, metavar="PATH")
    residual_striker: float | None = opt(
        help="with --low-level-controller walk: residual RL over the scripted striker; the walking command is the "
        "striker's plus SCALE x the policy's action (in (0, 2]; 0.3 corrects without overriding), so an untrained "
        "policy plays about the striker (skills/residual.py)", group=SOCCER, parse=finite_float, metavar="SCALE")
    controller_config: str | None = opt(help="command mode: the controller's YAML config (default: the .yaml with "
                                        "the same stem next to --low-level-controller)", group=SOCCER, metavar="PATH")
    command_limits: tuple[float, float, float] | None = opt(
        help="command mode: the speeds of a command of 1, in m/s, m/s, rad/s (default 1,1,1: the seed's unscaled "
        "command; with --low-level-controller walk, the engine's top speeds)", group=SOCCER,
        parse=_typed(parse_command_limits, "command_limits"), metavar="VX,VY,YAW")
    gait_threshold: float | None = opt(help="command mode: " + _CMD["gait_threshold"]
                                       + f" (default {CommandOptions().gait_threshold})", group=SOCCER,
                                       parse=finite_float)
    macro: str | None = opt(help="command mode: the kick macro, a mocap .npz file or a clip name of the hub dataset "
                            "(goal_kick, kick_ball1, ...) (default: none)", group=SOCCER, metavar="PATH_OR_NAME")
    macro_reward_bonus: float | None = opt(help="command mode: " + _MACRO["bonus"] + " Needs --reward-profile "
                                           "pressure_shot or tight, or competition with "
                                           "--allow-macro-bonus-with-competition. (default: none)", group=SOCCER,
                                           parse=finite_float)
    macro_reward_radius: float | None = opt(help=_MACRO["radius"] + f" (default {MacroReward.radius})", group=SOCCER,
                                            parse=finite_float)
    macro_reward_alignment_threshold: float | None = opt(help=_MACRO["alignment"]
                                                         + f" (default {MacroReward.alignment})", group=SOCCER,
                                                         parse=finite_float)
    macro_reward_cap: float | None = opt(help=_MACRO["cap"] + f" (default {MacroReward.cap})", group=SOCCER,
                                         parse=finite_float)
    allow_macro_bonus_with_competition: bool = opt(False, "let --macro-reward-bonus add to the competition profile "
                                                   "(it then no longer ranks episodes exactly as the official score)",
                                                   group=SOCCER)
    hf_token: str | None = opt(help="Hugging Face token for hub downloads (sets HF_TOKEN)", group=SOCCER)
    hf_home: str | None = opt(help="Hugging Face cache folder (sets HF_HOME; hub files in DIR/hub)", group=SOCCER,
                              metavar="DIR")
    max_episode_steps: int | None = opt(help="cut episodes (training and evaluation) at this many steps instead of "
                                        "the tasks' 5000: for smoke tests; the competition runs 5000", group=SOCCER,
                                        parse=int)
    sim: str | None = opt(help="simulator of the training envs and the training-time evaluations: fast (our twin of "
                          "each task: sai_mujoco's model and reset, equal to its step for step, several times faster) "
                          "or official (sai_mujoco's own step)", group=SOCCER, choices=SIMS)
    env_workers: int = opt(1, "shard the training envs over this many worker processes, one per core (default 1: "
                           "all envs in this process)", group=SOCCER, parse=int)
    ktt_steps_weight: float = opt(KTT_STEPS_WEIGHT, "kick_to_target steps weight of the official score (default "
                                  f"{KTT_STEPS_WEIGHT})", group=SOCCER, parse=finite_float)

    # evaluation
    eval_freq: int | None = opt(help=_RUN["eval_freq"], group=EVAL, parse=int)
    eval_episodes: int | None = opt(help="episodes per eval seed (per task on soccer)", group=EVAL, parse=int)
    eval_seeds: tuple[int, ...] | None = opt(help="comma-separated eval seeds", group=EVAL,
                                             parse=_typed(_seeds, "eval_seeds"))
    eval_seeds_random: int = opt(0, f"if > 0: draw this many distinct eval seeds in [0, {EVAL_SEED_POOL}) from "
                                 "--seed (overrides --eval-seeds)", group=EVAL, parse=int)
    competition_only_eval: bool = opt(False, "soccer: log only the official scores (comp_eval/*, eval_comp/*); no "
                                      "legacy eval/* keys and no best_model.zip", group=EVAL)
    legacy_only_eval: bool = opt(False, "soccer: log only the legacy env-weight scores (eval/*); the best model then "
                                 "follows eval/S_overall and no best_model_competition.zip", group=EVAL)
    steps_weight: float = opt(LEGACY_STEPS_WEIGHT, f"per-step weight of the legacy score (default "
                              f"{LEGACY_STEPS_WEIGHT})", group=EVAL, parse=finite_float)
    checkpoint_freq: int = opt(0, _RUN["checkpoint_freq"], group=EVAL, parse=int)
    log_interval: int = opt(2000, _RUN["log_interval"], group=EVAL, parse=int)

    @property
    def soccer(self) -> bool:
        """The soccer tasks (not a gymnasium --env-id)."""
        return self.env_id is None

    def with_defaults(self) -> TrainOptions:
        """These options with the workflow preset's values where left unset (soccer or --env-id)."""
        table = SOCCER_DEFAULTS if self.soccer else GENERIC_DEFAULTS
        unset = {key: value for key, value in table.items() if getattr(self, key) is None}
        if "eval_seeds" in unset:
            unset["eval_seeds"] = _seeds(unset["eval_seeds"])
        changed = dataclasses.replace(self, **unset)
        return dataclasses.replace(changed, reward_profile="env") if changed.reward_profile == "base" else changed


OPTION_FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}


def config_paths(name: str) -> tuple[str, ...] | None:
    """The config field path(s) an option sets (None for an option that is not an algorithm setting)."""
    return OPTION_FIELDS[name].metadata["config"]


def _get(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _has(cfg: Any, path: str) -> bool:
    head, _, rest = path.partition(".")
    if head not in {f.name for f in dataclasses.fields(cfg)}:
        return False
    return not rest or _has(getattr(cfg, head), rest)


def config_path_for(name: str, algo: str) -> str | None:
    """The config field an option sets for `algo` (None: the option does not apply to it)."""
    cfg = algorithm_spec(algo).config()
    needs = OPTION_FIELDS[name].metadata["needs"]
    if needs is not None:
        return needs if _has(cfg, needs) else None
    return next((p for p in config_paths(name) or () if _has(cfg, p)), None)


def applies_to(name: str) -> list[str]:
    """The algorithms an algorithm option applies to."""
    return [algo for algo in ALGORITHM_SPECS if config_path_for(name, algo) is not None]


def applicability(name: str) -> str:
    """'--tau applies to TD3 and SAC, not PPO' (or '... to SAC only')."""
    yes = [a.upper() for a in applies_to(name)]
    no = [a.upper() for a in ALGORITHM_SPECS if a.upper() not in yes]
    flag = "--" + name.replace("_", "-")
    if len(yes) == 1:
        return f"{flag} applies to {yes[0]} only"
    return f"{flag} applies to {' and '.join(yes)}" + (f", not {' and '.join(no)}" if no else "")


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def _per_algo(values: dict[str, Any]) -> str:
    shown = {algo: _show(v) for algo, v in values.items()}
    if len(set(shown.values())) == 1:
        return next(iter(shown.values()))
    return ", ".join(f"{algo.upper()} {v}" for algo, v in shown.items())


def default_text(name: str) -> str:
    """The real defaults of an algorithm option, per algorithm, on the soccer tasks and on --env-id."""
    algos = applies_to(name)
    paths = {a: config_path_for(name, a) for a in algos}
    soccer = _per_algo({a: _get(soccer_config(a), paths[a]) for a in algos})
    generic = _per_algo({a: _get(algorithm_spec(a).config(), paths[a]) for a in algos})
    return f"default {soccer}" if soccer == generic else f"default: soccer {soccer}; --env-id {generic}"


def _help(f: dataclasses.Field) -> str:
    """The flag's help: its text, and for an algorithm option which algorithms it applies to and their defaults;
    for a preset option its soccer and --env-id defaults."""
    meta, text = f.metadata, f.metadata["help"]
    if meta["config"] is not None or meta["needs"] is not None:
        algos = applies_to(f.name)
        who = "" if len(algos) == len(ALGORITHM_SPECS) else "/".join(a.upper() for a in algos) + ": "
        if meta["doc"]:
            path = config_path_for(f.name, algos[0]).split(".")
            owner = _get(algorithm_spec(algos[0]).config(), ".".join(path[:-1])) if len(path) > 1 else None
            docs = field_docs(type(owner) if owner is not None else algorithm_spec(algos[0]).config)
            text = " ".join(t for t in (docs.get(path[-1], ""), text) if t)
        if meta["config"] is not None and f.type not in ("bool", "bool | None"):
            text += f" ({default_text(f.name)})"
        return who + text
    if f.name in SOCCER_DEFAULTS or f.name in GENERIC_DEFAULTS:
        soccer, generic = SOCCER_DEFAULTS.get(f.name), GENERIC_DEFAULTS.get(f.name)
        shown = [f"soccer {soccer}"] if soccer is not None else []
        shown += [f"--env-id {generic}"] if generic is not None else []
        text += f" (default: {', '.join(shown)})"
    return text


def build_parser(prog: str = "train.py", description: str | None = None) -> ArgumentParser:
    """The train.py command line, made from TrainOptions (plus --recipe and --config, which the CLI resolves)."""
    parser = ArgumentParser(prog=prog, description=description)
    groups = {title: parser.add_argument_group(title) for title in GROUPS}
    groups[RUN].add_argument("--recipe", choices=sorted(RECIPES), help="start from a whole measured run's flags "
                             f"(flags given too override them); no arguments at all runs --recipe {DEFAULT_RECIPE}: "
                             + " ".join(RECIPES[DEFAULT_RECIPE]))
    for f in dataclasses.fields(TrainOptions):
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"help": _help(f), "default": f.default}
        if f.type in ("bool", "bool | None"):
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = meta["parse"]
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
            if meta["metavar"] is not None:
                kwargs["metavar"] = meta["metavar"]
        groups[meta["group"]].add_argument(flag, **kwargs)
    groups[RUN].add_argument("--config", metavar="RUN.yaml", help="read options from a YAML file (option: value); "
                             "flags given on the command line win; an unknown option is an error")
    return parser


def options_from_args(args: argparse.Namespace) -> TrainOptions:
    """The TrainOptions of a parsed command line."""
    return TrainOptions(**{name: getattr(args, name) for name in OPTION_FIELDS})


def options_from_mapping(values: dict[str, Any], where: str) -> TrainOptions:
    """TrainOptions from option names (dashes or underscores) and YAML-style values, each converted and checked
    as `--config` converts it (UsageError naming `where` and the key otherwise)."""
    actions = {a.dest: a for a in build_parser()._actions if a.option_strings}
    fields: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in OPTION_FIELDS:
            raise UsageError(f"{where}: unknown option {key!r}")
        fields[name] = config_value(actions[name], value, f"{where}: option {key!r}")
    return TrainOptions(**fields)


def check_options(options: TrainOptions) -> None:
    """The checks of single options and of options that exclude each other (UsageError): those that need no
    file, env or algorithm config. `options` has its defaults filled (TrainOptions.with_defaults)."""
    if not options.soccer and (options.sim is not None or options.env_workers != 1):
        raise UsageError("--sim and --env-workers apply to the soccer tasks, not to --env-id")
    if not options.soccer and options.residual_striker is not None:
        raise UsageError("--residual-striker applies to the soccer tasks, not to --env-id")
    for name in ("total_timesteps", "n_envs", "eval_episodes", "log_interval", "action_repeat", "max_episode_steps",
                 "env_workers"):
        if getattr(options, name) is not None and getattr(options, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be > 0, got {getattr(options, name)}")
    if options.n_envs is not None and options.env_workers > options.n_envs:
        raise UsageError(f"--env-workers {options.env_workers} shards {options.n_envs} env(s): it needs --n-envs >= "
                         f"{options.env_workers}, or --env-workers {options.n_envs}")
    if options.eval_episodes is not None and options.eval_episodes > MAX_EPISODES:
        raise UsageError(f"--eval-episodes must be <= {MAX_EPISODES}, got {options.eval_episodes}")
    if not str(options.save_dir).strip():
        raise UsageError(f"--save-dir needs a directory path, got {options.save_dir!r}")
    if not 0 <= options.eval_seeds_random <= EVAL_SEED_POOL:
        raise UsageError(f"--eval-seeds-random must be in [0, {EVAL_SEED_POOL}] (distinct seeds drawn from "
                         f"[0, {EVAL_SEED_POOL})), got {options.eval_seeds_random}")
    if options.competition_only_eval and options.legacy_only_eval:
        raise UsageError("--competition-only-eval and --legacy-only-eval are mutually exclusive")
    if options.threads < 0:
        raise UsageError(f"--threads must be >= 0, got {options.threads}")
    if options.ent_coef is not None and options.ent_coef_auto:
        raise UsageError("--ent-coef and --ent-coef-auto are mutually exclusive")
    for name in OPTION_FIELDS:
        meta = OPTION_FIELDS[name].metadata
        if (meta["config"] or meta["needs"]) and getattr(options, name) not in (None, False):
            if config_path_for(name, options.algo) is None:
                raise UsageError(applicability(name))
