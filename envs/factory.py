"""Env factories: `make_env` returns a thunk (CleanRL style); `make_vec_env` builds a gymnasium vector env.

The wrapper chain is defined once, in WRAPPER_CHAIN; its layers and the reward profiles are described in
envs/wrappers.py.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import gymnasium as gym
import sai_mujoco  # noqa: F401  (registers the LowerT1* ids; does not import mujoco, so MUJOCO_GL can still be set)

from envs.command import CommandAction, CommandOptions, MacroBonus, command_wrapper
from envs.fastsim import FastSoccerEnv, FusedPDRepeat, check_sim
from envs.tasks import Task, get_task
from envs.vector import BatchVectorEnv, ShardedVectorEnv
from envs.wrappers import (
    ACTION_MODES,
    DEFAULT_PD_SCALE,
    ENV_REWARD_PROFILES,
    REWARD_PROFILES,
    SHAPING_PROFILES,
    ActionRepeat,
    CompetitionReward,
    LeanInfo,
    PDAction,
    PreprocessObs,
    ShapedEnvReward,
    TorqueAction,
    adjust_reward_config,
)

VEC_ENVS = ("sync", "async")


@dataclasses.dataclass(frozen=True)
class ChainSettings:
    """What decides the wrapper chain of one env: make_env's arguments, already checked."""

    task: Task
    action_mode: str
    reward_profile: str
    action_repeat: int
    pd_scale: float
    lean_info: bool
    command: CommandOptions | None
    sim: str

    @property
    def fused_pd(self) -> bool:
        """The fast twin runs the PD law and the action repeat in one loop (FusedPDRepeat)."""
        return self.sim == "fast" and self.action_mode == "pd"


@dataclasses.dataclass(frozen=True)
class WrapperStep:
    """One layer of the chain: its wrapper type, whether a configuration uses it, how it wraps the env below."""

    wrapper: type[gym.Wrapper]
    used: Callable[[ChainSettings], bool]
    wrap: Callable[[gym.Env, ChainSettings], gym.Env]


WRAPPER_CHAIN: tuple[WrapperStep, ...] = (
    WrapperStep(CommandAction, lambda s: s.action_mode == "command",
                lambda env, s: command_wrapper(env, s.task, s.command)),
    WrapperStep(FusedPDRepeat, lambda s: s.fused_pd, lambda env, s: FusedPDRepeat(env, s.pd_scale, s.action_repeat)),
    WrapperStep(PDAction, lambda s: s.action_mode == "pd" and not s.fused_pd, lambda env, s: PDAction(env, s.pd_scale)),
    WrapperStep(TorqueAction, lambda s: s.action_mode == "torque", lambda env, s: TorqueAction(env)),
    WrapperStep(ActionRepeat, lambda s: s.action_repeat > 1 and not s.fused_pd,
                lambda env, s: ActionRepeat(env, s.action_repeat)),
    WrapperStep(PreprocessObs, lambda s: True, lambda env, s: PreprocessObs(env, s.task)),
    WrapperStep(CompetitionReward, lambda s: s.reward_profile == "competition",
                lambda env, s: CompetitionReward(env, s.task)),
    WrapperStep(ShapedEnvReward, lambda s: s.reward_profile in SHAPING_PROFILES,
                lambda env, s: ShapedEnvReward(env, s.reward_profile)),
    WrapperStep(MacroBonus, lambda s: s.command is not None and s.command.macro_reward is not None,
                lambda env, s: MacroBonus(env, s.task, s.command.macro_reward)),
    WrapperStep(LeanInfo, lambda s: s.lean_info, lambda env, s: LeanInfo(env)),
)
"""The wrapper chain, innermost first: its one definition (each layer is described in envs/wrappers.py).
make_env applies the steps a configuration uses, in this order, then `outer`; tests/test_envs_factory.py
holds the chains built against this table and against the expected chains written out."""


def make_env(
    task: str,
    seed: int | None = None,
    action_mode: str = "torque",
    reward_profile: str = "competition",
    action_repeat: int = 1,
    pd_scale: float = DEFAULT_PD_SCALE,
    render_mode: str | None = None,
    render_size: tuple[int, int] | None = None,
    max_episode_steps: int | None = None,
    lean_info: bool = False,
    command: CommandOptions | None = None,
    sim: str = "official",
    outer: Callable[[gym.Env], gym.Env] | None = None,
) -> Callable[[], gym.Env]:
    """A thunk building one wrapped soccer env; its action space is Box(-1, 1, (12,)) (Box(-1, 1, (3,)) in
    command mode), its obs 89-dim.

    Arguments are checked here (ValueError), before any env exists. `seed` resets the env once at
    construction and seeds its action space. `max_episode_steps` overrides the 5000-step TimeLimit
    (tests use it to stay short); `render_size` is (width, height) for `render_mode="rgb_array"`.
    `lean_info` keeps only the terminal reward_terms in info (for training vector envs).
    `command` configures action_mode "command" (None there: CommandOptions(), the controller from the hub);
    its controller and macro files are loaded here, once per process, so bad files fail before any env.
    `sim` "fast" steps the task with our twin (envs/fastsim.py: the official env's model, data and reset,
    equal step for step); "official" with sai_mujoco's own step. In pd mode the fast twin runs the PD law and
    the action repeat in one fused loop (FusedPDRepeat) instead of PDAction + ActionRepeat.
    `outer` wraps the finished env last (the residual striker of skills/residual.py: its action and observation
    spaces must be the env's).
    The env's metadata holds the raw torque bounds and the action/reward settings (for the exporter).
    """
    spec = get_task(task)
    check_sim(sim)
    if action_mode not in ACTION_MODES:
        raise ValueError(f"unknown action_mode {action_mode!r}; choose from {', '.join(ACTION_MODES)}")
    if reward_profile not in REWARD_PROFILES:
        raise ValueError(f"unknown reward_profile {reward_profile!r}; choose from {', '.join(REWARD_PROFILES)}")
    if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
        raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
    if not (math.isfinite(pd_scale) and pd_scale > 0):
        raise ValueError(f"pd_scale must be finite and > 0, got {pd_scale!r}")
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    if command is not None and action_mode != "command":
        raise ValueError(f"command options apply to action_mode 'command', not {action_mode!r}")
    if action_mode == "command":
        command = command if command is not None else CommandOptions()
        command.prepare()
    if reward_profile in ENV_REWARD_PROFILES:
        warnings.warn(
            f"reward_profile {reward_profile!r} builds on the raw env reward, which is misaligned with the "
            "competition score (it pays every step after the first touch); prefer 'competition'",
            stacklevel=2,
        )
    render_kwargs = {} if render_size is None else {"width": render_size[0], "height": render_size[1]}

    settings = ChainSettings(spec, action_mode, reward_profile, action_repeat, pd_scale, lean_info, command, sim)
    return EnvThunk(settings, seed, render_mode, render_kwargs, max_episode_steps, outer)


@dataclasses.dataclass(frozen=True)
class EnvThunk:
    """What make_env returns: calling it builds the env. Plain data plus module-level callables, so a sharded
    vector env hands it to its worker processes with the standard pickle of multiprocessing (no code travels:
    the worker imports every class and function by name)."""

    settings: ChainSettings
    seed: int | None
    render_mode: str | None
    render_kwargs: dict
    max_episode_steps: int | None
    outer: Callable[[gym.Env], gym.Env] | None

    def __call__(self) -> gym.Env:
        import sai_mujoco  # noqa: F401, F811  (registers the ids in a worker process that unpickled this thunk)

        settings, spec = self.settings, self.settings.task
        if settings.sim == "fast":
            official = gym.make(spec.env_id, render_mode=self.render_mode, **self.render_kwargs)
            env = FastSoccerEnv(official, spec, max_episode_steps=self.max_episode_steps)
        else:
            env = gym.make(spec.env_id, render_mode=self.render_mode, max_episode_steps=self.max_episode_steps,
                           **self.render_kwargs)
        base = env.unwrapped
        if settings.reward_profile in SHAPING_PROFILES:
            # An instance attribute: the class-level reward_config dict stays untouched.
            base.reward_config = adjust_reward_config(base.reward_config, settings.reward_profile)
        for step in WRAPPER_CHAIN:
            if step.used(settings):
                env = step.wrap(env, settings)
        if self.outer is not None:
            env = self.outer(env)
        command = settings.command
        env.metadata = {
            **env.metadata,
            "task": spec.name,
            "action_mode": settings.action_mode,
            "torque_low": base.action_space.low.tolist(),
            "torque_high": base.action_space.high.tolist(),
            "pd_scale": settings.pd_scale,
            "action_repeat": settings.action_repeat,
            "reward_profile": settings.reward_profile,
            "sim": settings.sim,
            **({"command": dataclasses.asdict(command)} if command is not None else {}),
        }
        if self.seed is not None:
            env.reset(seed=self.seed)
            env.action_space.seed(self.seed)
        return env


def make_vec_env(
    task_list: Sequence[str],
    seed: int = 0,
    vec_env: str = "sync",
    action_mode: str = "torque",
    reward_profile: str = "competition",
    action_repeat: int = 1,
    pd_scale: float = DEFAULT_PD_SCALE,
    max_episode_steps: int | None = None,
    lean_info: bool = True,
    command: CommandOptions | None = None,
    sim: str = "official",
    workers: int = 1,
    outer: Callable[[gym.Env], gym.Env] | None = None,
) -> gym.vector.VectorEnv:
    """A gymnasium vector env, env i running task_list[i] seeded seed + i, with SAME_STEP autoreset.

    The final obs of an ended episode is in info["final_obs"] (mask info["_final_obs"]). `lean_info`
    defaults to True here: training needs no per-step info, and aggregating it is costly (see LeanInfo).
    At 500 Hz "sync" is faster than "async" unless each step does many physics steps (action_repeat).
    With `sim="fast"` the envs are our twins (make_env) in an envs.vector.BatchVectorEnv; `workers` > 1
    shards them over that many processes (envs.vector.ShardedVectorEnv, for either sim; `vec_env` must
    then be "sync").
    """
    if vec_env not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {vec_env!r}; choose from {', '.join(VEC_ENVS)}")
    if not task_list:
        raise ValueError("task_list must name at least one task")
    check_sim(sim)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= len(task_list):
        raise ValueError(f"workers must be an integer in [1, n_envs={len(task_list)}], got {workers!r}")
    if sim == "fast" and vec_env != "sync":
        raise ValueError("vec_env 'async' runs sai_mujoco envs one per process; the fast sim shards its envs with "
                         "workers instead")
    if workers > 1 and vec_env != "sync":
        raise ValueError("workers > 1 shards the envs over processes itself; use vec_env 'sync' with it")
    fns = [
        make_env(
            task,
            seed=seed + i,
            action_mode=action_mode,
            reward_profile=reward_profile,
            action_repeat=action_repeat,
            pd_scale=pd_scale,
            max_episode_steps=max_episode_steps,
            lean_info=lean_info,
            command=command,
            sim=sim,
            outer=outer,
        )
        for i, task in enumerate(task_list)
    ]
    if workers > 1:
        return ShardedVectorEnv(fns, workers)
    if sim == "fast":
        return BatchVectorEnv(fns)
    vector_cls = gym.vector.SyncVectorEnv if vec_env == "sync" else gym.vector.AsyncVectorEnv
    return vector_cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
