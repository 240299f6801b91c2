"""The `command` action mode: the policy steers the walking controller and may fire a kick macro.

The policy acts in Box(-1, 1, (3,)): (vx, vy, yaw rate) as fractions of the velocity limits of
`CommandOptions` (defaults: the seed's unscaled +-1 m/s, +-1 m/s, +-1 rad/s, the joystick's command
range). Every env step (every 2 ms physics step; under ActionRepeat the repeated command reaches this
wrapper at each physics step) the wrapper picks the torques:

1. a kick macro is playing: PD toward its current frame (the controller's stateless PD law; over our walk
   engine the frame plus the engine's IMU balance feedback, envs.walk.WalkEngine.macro_step);
2. else the macro's sentinel trigger fires for this command and the state of the task being played
   (envs.macros.MacroPlayer.should_trigger): the macro starts and its first frame is played;
3. else the joystick controller (envs.controller) walks with the scaled command.

The sentinel is tested on the policy's [-1, 1] command, so it does not depend on the velocity limits.
While a macro plays the controller is not stepped (its gait clock and decimation counter hold). A macro
is aborted when the step shows ball contact (reward_terms ball_hits, goal_scored or success > 0). The
controller and the macro are reset at every env reset.

With a macro, info gains at reset and at every step: `macro_active` (this step's torques came from the
macro), `macro_triggered` (it started this step), `macro_step_index` (the frame played, -1 if none) and
the episode's `macro_trigger_count`, `macro_active_steps`, `macro_aborted_count` (after this step's abort,
so the terminal step's counters are complete). Under ActionRepeat info is the last physics step's.

`MacroBonus` (CommandOptions.macro_reward) adds the seed's optional reward for a well-placed kick: on a step
whose macro fired with the ball within `radius` and aligned with the task's goal (post-step state, as the seed had it),
+bonus, at most `cap` per episode; info gets `macro_reward_bonus` (this step) and, at the episode's end,
`macro_reward_bonus_total` (the seed logged a per-step mean that never reached its logs). A bonus breaks the
`competition` profile's ranking guarantee, so train.py asks for --allow-macro-bonus-with-competition there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from envs.controller import (
    DEFAULT_GAIT_THRESHOLD,
    N_JOINTS,
    JoystickController,
    actuator_names,
    controller_files,
    env_step_dt,
    load_controller,
)
from envs.macros import MacroPlayer, TriggerConfig, ball_geometry, load_macro
from envs.tasks import Task
from envs.walk import WALK_ACTION_SCALE, WALK_CLIP_ACTIONS, WALK_DT, WalkEngine, load_walk_params

WALK_CONTROLLER = "walk"
"""The `controller` value that selects our walk engine instead of a TorchScript controller file."""
CONTACT_TERMS = ("ball_hits", "goal_scored", "success")
"""reward_terms that show the ball was touched: a playing macro stops there."""


@dataclass(frozen=True, kw_only=True)
class MacroReward:
    """The macro bonus of the seed's reward wrappers (docs/seed_pipeline.md, --macro-reward-*)."""

    bonus: float
    """Reward added on a step whose macro fired near an aligned ball (> 0)."""
    radius: float = 0.6
    """Largest horizontal robot-ball distance (m) that earns it (the seed's default)."""
    alignment: float = 0.6
    """Smallest cosine between robot->ball and robot->goal that earns it."""
    cap: float = 0.5
    """Most bonus per episode."""

    def __post_init__(self) -> None:
        for name in ("bonus", "radius", "cap"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"macro reward {name} must be finite and > 0, got {value}")
        if not -1.0 <= self.alignment <= 1.0:
            raise ValueError(f"macro reward alignment must be a cosine in [-1, 1], got {self.alignment}")


@dataclass(frozen=True, kw_only=True)
class CommandOptions:
    """Everything the command action mode needs besides the task."""

    controller: str | None = None
    """TorchScript file of the walking controller; None: fetch it from the hub (optional huggingface_hub);
    "walk": our walk engine (envs/walk.py), no download."""
    controller_config: str | None = None
    """Its YAML config; None: the .yaml with the controller's stem next to it (or the hub's with the hub model)."""
    max_vx: float = 1.0
    """Forward/backward speed (m/s) of a command of +-1 (the seed fed the policy's action unscaled: 1 m/s)."""
    max_vy: float = 1.0
    """Sideways speed (m/s) of a command of +-1."""
    max_yaw: float = 1.0
    """Turn rate (rad/s) of a command of +-1."""
    gait_threshold: float = DEFAULT_GAIT_THRESHOLD
    """Scaled commands with a smaller norm stop the gait (the robot stands instead of stepping in place)."""
    macro: str | None = None
    """Kick macro: a mocap .npz path or a hub clip name (goal_kick, ...); None: no macro."""
    macro_trigger: TriggerConfig = field(default_factory=TriggerConfig)
    """When the macro fires: sentinel command and ball/goal geometry (the seed's thresholds)."""
    macro_max_frames: int | None = None
    """Play only the macro's first frames (None: the whole clip)."""
    robot: str = "booster_lower_t1"
    """Robot folder of the hub's mocap clips."""
    macro_reward: MacroReward | None = None
    """Training reward bonus for a well-placed macro (MacroBonus); None: none. Needs `macro`."""
    walk_params: str | None = None
    """With controller "walk": its parameter file (None: the shipped envs/walk_params.json)."""

    def __post_init__(self) -> None:
        for name in ("max_vx", "max_vy", "max_yaw"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be finite and > 0, got {value}")
        if not (math.isfinite(self.gait_threshold) and self.gait_threshold >= 0):
            raise ValueError(f"gait_threshold must be finite and >= 0, got {self.gait_threshold}")
        if self.macro_max_frames is not None and self.macro_max_frames < 1:
            raise ValueError(f"macro_max_frames must be >= 1 or None, got {self.macro_max_frames}")
        if self.macro_reward is not None and self.macro is None:
            raise ValueError("a macro reward needs a macro (--macro)")
        if self.walk:
            if self.controller_config is not None:
                raise ValueError("--controller-config applies to the hub controller, not to the walk engine")
            if self.gait_threshold != DEFAULT_GAIT_THRESHOLD:
                raise ValueError("--gait-threshold applies to the hub controller; the walk engine stands below its "
                                 "own stop_threshold (walk parameter file)")
        elif self.walk_params is not None:
            raise ValueError("a walk parameter file applies to --low-level-controller walk only")

    @property
    def walk(self) -> bool:
        """Whether the walk engine (not a TorchScript controller) walks."""
        return self.controller == WALK_CONTROLLER

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CommandOptions:
        """Options from `dataclasses.asdict` output, e.g. a run's metadata["command"] (evaluating a command-mode
        checkpoint needs the controller and macro it was trained with). TypeError or ValueError unless every field
        has its type (the document may come from someone else's file)."""
        if not isinstance(doc, Mapping):
            raise TypeError(f"command options must be a mapping, got {type(doc).__name__}")
        fields = dict(doc)
        for name in ("controller", "controller_config", "macro", "robot", "walk_params"):
            if not (fields.get(name) is None or isinstance(fields[name], str)):
                raise TypeError(f"{name} must be a string or null")
        for name in ("macro_trigger", "macro_reward"):
            if not (fields.get(name) is None or isinstance(fields[name], Mapping)):
                raise TypeError(f"{name} must be a mapping or null")
        if fields.get("macro_trigger") is None:
            fields.pop("macro_trigger", None)
        if isinstance(fields.get("macro_reward"), Mapping):
            fields["macro_reward"] = MacroReward(**fields["macro_reward"])
        if isinstance(fields.get("macro_trigger"), Mapping):
            trigger = dict(fields["macro_trigger"])
            trigger["pattern"] = tuple(trigger.get("pattern", TriggerConfig.pattern))
            fields["macro_trigger"] = TriggerConfig(**trigger)
        return cls(**fields)

    @property
    def limits(self) -> np.ndarray:
        """(max_vx, max_vy, max_yaw): the command of an action of ones."""
        return np.array([self.max_vx, self.max_vy, self.max_yaw])

    def prepare(self) -> None:
        """Load (and cache) the controller and the macro file now, so bad files fail before any env exists."""
        if self.walk:
            load_walk_params(self.walk_params)
            scale, clip = WALK_ACTION_SCALE, WALK_CLIP_ACTIONS
        else:
            cfg, _ = load_controller(*controller_files(self.controller, self.controller_config))
            scale, clip = cfg.action_scale, cfg.clip_actions
        if self.macro is not None:
            # The pose only shifts the returned actions; this call reads, checks and caches the file.
            load_macro(self.macro, default_pose=np.zeros(N_JOINTS), action_scale=scale, clip_actions=clip,
                       robot=self.robot, max_frames=self.macro_max_frames)


class CommandAction(gym.Wrapper):
    """Command action mode on a raw sai_mujoco env (module docstring); build it with `command_wrapper`."""

    def __init__(self, env: gym.Env, controller: JoystickController | WalkEngine, *, limits: np.ndarray, task: str,
                 macro: MacroPlayer | None = None) -> None:
        super().__init__(env)
        self.controller = controller
        self.limits = np.asarray(limits, np.float64)
        self.task = task
        self.macro = macro
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self._obs: np.ndarray = np.zeros(2 * N_JOINTS)
        self._info: dict = {}

    def _macro_info(self, info: dict, frame: int, triggered: bool) -> dict:
        info["macro_active"] = frame >= 0
        info["macro_triggered"] = triggered
        info["macro_step_index"] = frame
        info.update(self.macro.counters())
        return info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self.controller.reset()
        self._obs, self._info = obs, info
        if self.macro is not None:
            self.macro.reset()
            self._macro_info(info, -1, False)
        return obs, info

    def torques(self, action: np.ndarray) -> tuple[np.ndarray, int, bool]:
        """(torques of this step, macro frame played or -1, whether the macro started) for a [-1, 1] command."""
        command = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        macro = self.macro
        triggered = False
        if macro is not None and not macro.active and macro.should_trigger(command, self._info, self.task):
            macro.start()
            triggered = True
        if macro is not None and macro.active:
            frame = macro.frame_index
            if isinstance(self.controller, WalkEngine):  # our engine keeps its balance feedback under a macro
                return self.controller.macro_step(macro.next_action(), self._obs, self._info), frame, triggered
            q, qd = self._obs[:N_JOINTS], self._obs[N_JOINTS:2 * N_JOINTS]
            return self.controller.pd(self.controller.action_targets(macro.next_action()), q, qd), frame, triggered
        return self.controller.step(command * self.limits, self._obs, self._info), -1, False

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        torques, frame, triggered = self.torques(action)
        obs, reward, terminated, truncated, info = self.env.step(torques)
        self._obs, self._info = obs, info
        if self.macro is not None:
            terms = info.get("reward_terms", {})
            if self.macro.active and any(float(terms.get(k, 0.0)) > 0 for k in CONTACT_TERMS):
                self.macro.abort()
            self._macro_info(info, frame, triggered)
        return obs, reward, terminated, truncated, info


def command_wrapper(env: gym.Env, task: Task, options: CommandOptions) -> CommandAction:
    """Wrap a raw soccer env (gym.make's) in the command mode: the controller and the macro from `options`
    (files cached per process), joint names and step from the env's MuJoCo model, torque bounds from its
    action space."""
    base = env.unwrapped
    dt = env_step_dt(base)
    if options.walk:
        if abs(dt - WALK_DT) > 1e-12:
            raise ValueError(f"the walk engine is clocked for a {WALK_DT} s env step, the env steps {dt} s")
        controller = WalkEngine(load_walk_params(options.walk_params)[0], torque_low=env.action_space.low,
                                torque_high=env.action_space.high)
        scale, clip = WALK_ACTION_SCALE, WALK_CLIP_ACTIONS
    else:
        cfg, net = load_controller(*controller_files(options.controller, options.controller_config))
        controller = JoystickController(cfg, net, joint_names=actuator_names(base, cfg.num_actions),
                                        torque_low=env.action_space.low, torque_high=env.action_space.high,
                                        env_dt=dt, gait_threshold=options.gait_threshold)
        scale, clip = cfg.action_scale, cfg.clip_actions
    macro = None
    if options.macro is not None:
        actions, frequency = load_macro(options.macro, default_pose=controller.default_pose, action_scale=scale,
                                        clip_actions=clip, robot=options.robot, max_frames=options.macro_max_frames)
        macro = MacroPlayer(actions, frequency, env_dt=dt, trigger=options.macro_trigger)
    return CommandAction(env, controller, limits=options.limits, task=task.name, macro=macro)


class MacroBonus(gym.Wrapper):
    """+bonus on steps where the kick macro fired with the ball near and aligned (module docstring)."""

    def __init__(self, env: gym.Env, task: Task, reward: MacroReward) -> None:
        super().__init__(env)
        self.task = task.name
        self.reward = reward
        self._total = 0.0

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        self._total = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        bonus = 0.0
        if info.get("macro_triggered"):
            distance, cosine = ball_geometry(info, self.task)
            if distance <= self.reward.radius and cosine >= self.reward.alignment:
                bonus = max(0.0, min(self.reward.bonus, self.reward.cap - self._total))
        self._total += bonus
        info["macro_reward_bonus"] = bonus
        if terminated or truncated:
            info["macro_reward_bonus_total"] = self._total
        return obs, float(reward) + bonus, terminated, truncated, info
