"""The low-level walking controller of the command action mode: joystick command -> joint torques.

The Lower T1 joystick controller (docs/seed_pipeline.md, "The walking controller") is a TorchScript network trained in
booster_gym plus its YAML config. Every `decimation` env steps it reads a 47-dim observation

    [0:3]   projected gravity * normalization.gravity       (from info["robot_quat"], xyzw)
    [3:6]   gyro * normalization.ang_vel                    (info["robot_gyro"])
    [6:8]   command vx, vy (m/s) * normalization.lin_vel
    [8]     command yaw rate (rad/s) * normalization.ang_vel
    [9:11]  cos, sin(2 pi phase), both 0 while the gait is off
    [11:23] (q - q_default) * normalization.dof_pos          (raw obs[0:12])
    [23:35] qd * normalization.dof_vel                       (raw obs[12:24])
    [35:47] the previous (clipped) network actions

and outputs 12 actions, clipped to +-clip_actions, that set joint targets q_default + action_scale * a.
Every env step applies the PD law clip(Kp (target - q) - Kd qd, torque bounds) and advances the gait
phase by sim.dt * gait_frequency (mod 1).

Where this differs from the seed, and why (docs/seed_pipeline.md, fixes 20-22):
1. `reset()` clears the gait phase, the decimation counter, the previous actions and the targets; the
   command wrapper calls it at every episode start (the seed never did, so an episode started mid-gait).
2. The gait is off when the command's norm is below `gait_threshold` (default 0.05), not only for an exact
   zero command, which a continuous policy never outputs (it would step in place forever).
3. The controller ticks once per env step, so `sim.dt` must equal the env's step (2 ms, read from the
   MuJoCo model); a mismatch is an error instead of a silently wrong gait clock and decimation.
4. Files are read once per process (cache by path); the seed re-loaded them at every env construction.
5. A joint's default angle and gains come from the config key that is the LONGEST substring of its
   actuator name ("Hip_Pitch" beats "Hip"); `default_joint_angles.default` is the fallback angle, a joint
   without a stiffness or damping entry is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from envs.hub import hf_download
from envs.preprocess import projected_gravity

N_JOINTS = 12
OBS_WIDTH = 11 + 3 * N_JOINTS
"""47: gravity 3, gyro 3, command 3, gait 2, then q, qd and the previous actions."""
DEFAULT_GAIT_THRESHOLD = 0.05
"""Commands with a smaller norm (m/s and rad/s mixed, as the network sees them) switch the gait off."""
DT_TOLERANCE = 1e-9
"""Largest accepted difference (s) between the config's sim.dt and the env's step."""

HUB_REPO = "SaiResearch/booster_soccer_models"
HUB_MODEL = "robot/lower_t1_control.pt"
HUB_CONFIG = "config/lower_t1.yaml"
LOCAL_HINT = ("pass the .pt file as the controller (train.py --low-level-controller PATH) with the YAML next to it "
              "under the same stem, or --controller-config PATH")

Net = Callable[[torch.Tensor], torch.Tensor]
"""The controller network: a (1, 47) float32 tensor -> (1, 12) actions."""


def _key(doc: Any, dotted: str, source: str) -> Any:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ValueError(f"{source}: controller config lacks the key {dotted}")
        node = node[part]
    return node


def _number(doc: Any, dotted: str, source: str) -> float:
    value = _key(doc, dotted, source)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: controller config key {dotted} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{source}: controller config key {dotted} must be finite, got {value!r}")
    return number


def _integer(doc: Any, dotted: str, source: str) -> int:
    number = _number(doc, dotted, source)
    if not number.is_integer():
        raise ValueError(f"{source}: controller config key {dotted} must be an integer, got {number}")
    return int(number)


def _name_map(doc: Any, dotted: str, source: str) -> dict[str, float]:
    value = _key(doc, dotted, source)
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"{source}: controller config key {dotted} must map joint-name parts to numbers")
    return {str(k): _number(value, str(k), f"{source} ({dotted})") for k in value}


@dataclass(frozen=True)
class ControllerConfig:
    """The parts of the controller's YAML (booster_gym layout) the controller uses."""

    default_joint_angles: Mapping[str, float]
    """init_state.default_joint_angles: joint-name part -> default angle (rad); "default" is the fallback."""
    stiffness: Mapping[str, float]
    """control.stiffness: joint-name part -> Kp (N·m/rad)."""
    damping: Mapping[str, float]
    """control.damping: joint-name part -> Kd (N·m·s/rad)."""
    action_scale: float
    """control.action_scale: target offset (rad) per unit action."""
    decimation: int
    """control.decimation: env steps per network call (10 at 2 ms: the network runs at 50 Hz)."""
    gravity: float
    """normalization.gravity: scale of the projected gravity in the observation."""
    ang_vel: float
    """normalization.ang_vel: scale of the gyro and of the yaw-rate command."""
    lin_vel: float
    """normalization.lin_vel: scale of the vx, vy command."""
    dof_pos: float
    """normalization.dof_pos: scale of q - q_default."""
    dof_vel: float
    """normalization.dof_vel: scale of qd."""
    clip_actions: float
    """normalization.clip_actions: network outputs are clipped to +-this."""
    num_actions: int
    """env.num_actions: 12."""
    num_observations: int
    """env.num_observations: 47."""
    gait_frequency: float
    """Mean of commands.gait_frequency (Hz); the seed's 1.5 Hz from [1, 2]."""
    sim_dt: float
    """sim.dt: the controller's tick (s); must equal the env's step."""

    @classmethod
    def from_dict(cls, doc: Any, source: str = "controller config") -> ControllerConfig:
        """Parse a loaded YAML document; a missing or malformed key is a one-line ValueError naming it."""
        gait = _key(doc, "commands.gait_frequency", source)
        gait_values = gait if isinstance(gait, (list, tuple)) else [gait]
        try:
            gait_hz = sum(float(v) for v in gait_values) / len(gait_values)
        except (TypeError, ValueError, ZeroDivisionError):
            raise ValueError(f"{source}: commands.gait_frequency must be a number or a list of numbers") from None
        if not math.isfinite(gait_hz) or gait_hz < 0:
            raise ValueError(f"{source}: commands.gait_frequency must be >= 0, got {gait!r}")
        config = cls(
            default_joint_angles=_name_map(doc, "init_state.default_joint_angles", source),
            stiffness=_name_map(doc, "control.stiffness", source),
            damping=_name_map(doc, "control.damping", source),
            action_scale=_number(doc, "control.action_scale", source),
            decimation=_integer(doc, "control.decimation", source),
            gravity=_number(doc, "normalization.gravity", source),
            ang_vel=_number(doc, "normalization.ang_vel", source),
            lin_vel=_number(doc, "normalization.lin_vel", source),
            dof_pos=_number(doc, "normalization.dof_pos", source),
            dof_vel=_number(doc, "normalization.dof_vel", source),
            clip_actions=_number(doc, "normalization.clip_actions", source),
            num_actions=_integer(doc, "env.num_actions", source),
            num_observations=_integer(doc, "env.num_observations", source),
            gait_frequency=gait_hz,
            sim_dt=_number(doc, "sim.dt", source),
        )
        config.check(source)
        return config

    @classmethod
    def from_yaml(cls, path: Path) -> ControllerConfig:
        """Read and parse a controller YAML file (one-line ValueError for an unreadable file or a bad key)."""
        try:
            doc = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
            raise ValueError(f"{path}: cannot read the controller config ({reason})") from None
        return cls.from_dict(doc, str(path))

    def check(self, source: str = "controller config") -> None:
        """Values the controller cannot run with are a ValueError naming the key."""
        if self.num_actions != N_JOINTS:
            raise ValueError(f"{source}: env.num_actions must be {N_JOINTS} (the T1 legs), got {self.num_actions}")
        if self.num_observations != OBS_WIDTH:
            raise ValueError(f"{source}: env.num_observations must be {OBS_WIDTH}, got {self.num_observations}")
        if self.decimation < 1:
            raise ValueError(f"{source}: control.decimation must be an integer >= 1, got {self.decimation}")
        for name, key in (("action_scale", "control.action_scale"), ("clip_actions", "normalization.clip_actions"),
                          ("sim_dt", "sim.dt")):
            if getattr(self, name) <= 0:
                raise ValueError(f"{source}: {key} must be > 0, got {getattr(self, name)}")


def match_joints(table: Mapping[str, float], joint_names: Sequence[str], what: str,
                 fallback: str | None = None) -> np.ndarray:
    """Per joint, the value of the longest key of `table` contained in its name, else table[fallback];
    ValueError naming the joint when neither exists."""
    keys = sorted((k for k in table if k != fallback), key=len, reverse=True)
    out = np.empty(len(joint_names))
    for i, name in enumerate(joint_names):
        key = next((k for k in keys if k in name), fallback if fallback in table else None)
        if key is None:
            raise ValueError(f"controller config {what} has no entry for joint {name!r}")
        out[i] = table[key]
    return out


_LOADED: dict[tuple[str, str], tuple[ControllerConfig, Net]] = {}
"""(resolved model path, resolved config path) -> (config, network): files are read once per process."""


def controller_files(model: str | None, config: str | None) -> tuple[Path, Path]:
    """(TorchScript file, YAML config) of the controller.

    `model` None fetches both from the hub (HUB_REPO: HUB_MODEL, HUB_CONFIG; envs.hub.HubUnavailable when it
    cannot). A local `model` takes its config from `config`, or else from the .yaml with the same stem next to it.
    """
    if model is None:
        if config is not None:
            raise ValueError("a controller config without a controller model: give the model file too")
        fetched = [hf_download(HUB_REPO, name, repo_type="model", what="low-level controller",
                               local_hint=LOCAL_HINT) for name in (HUB_MODEL, HUB_CONFIG)]
        return fetched[0], fetched[1]
    model_path = Path(model)
    if not model_path.is_file():
        raise ValueError(f"low-level controller: no such file {model}")
    config_path = Path(config) if config is not None else model_path.with_suffix(".yaml")
    if not config_path.is_file():
        raise ValueError(f"controller config: no such file {config_path}"
                         + ("" if config is not None else f" (the default next to {model_path.name})"))
    return model_path, config_path


def load_controller(model: Path, config: Path) -> tuple[ControllerConfig, Net]:
    """(config, network) of a controller, checked and cached per process.

    The network is fed a zero (1, num_observations) input at load: a network that does not take it or does
    not return (1, num_actions) is a one-line ValueError.
    """
    key = (str(Path(model).resolve()), str(Path(config).resolve()))
    if key in _LOADED:
        return _LOADED[key]
    cfg = ControllerConfig.from_yaml(config)
    try:
        net = torch.jit.load(str(model), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError / ValueError / pickle errors for a non-TorchScript file
        raise ValueError(f"{model}: not a TorchScript controller ({exc.__class__.__name__})") from None
    net.eval()
    try:
        with torch.inference_mode():
            out = net(torch.zeros(1, cfg.num_observations))
    except Exception as exc:  # a TorchScript shape error is a long multi-line RuntimeError
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
        raise ValueError(f"{model}: the controller network does not take a (1, {cfg.num_observations}) "
                         f"observation ({reason})") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, cfg.num_actions):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{model}: the controller network returns {shape}, expected (1, {cfg.num_actions})")
    _LOADED[key] = (cfg, net)
    return cfg, net


def actuator_names(base_env: Any, n: int = N_JOINTS) -> list[str]:
    """Names of the last `n` actuators of a sai_mujoco env's MuJoCo model (the legs, as the seed matched them)."""
    import mujoco  # here, not at the top: importing envs must not import mujoco (MUJOCO_GL is read at import)

    model = base_env.sim.model._model
    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) for i in range(model.nu - n, model.nu)]


def env_step_dt(base_env: Any) -> float:
    """Simulated seconds per env step: the model's timestep times the physics steps per control step."""
    physics_dt = float(base_env.sim.model._model.opt.timestep)
    substeps = max(1, round(float(getattr(base_env, "control_timestep", physics_dt)) / physics_dt))
    return physics_dt * substeps


class JoystickController:
    """The walking controller of one env: call `reset()` at each episode start and `step()` every env step.

    `joint_names` (the env's leg actuators) select the default pose and gains from the config; the torque
    bounds are the env's action space; `env_dt` is the env's step, which must equal the config's sim.dt.
    """

    def __init__(self, config: ControllerConfig, net: Net, *, joint_names: Sequence[str], torque_low: np.ndarray,
                 torque_high: np.ndarray, env_dt: float, gait_threshold: float = DEFAULT_GAIT_THRESHOLD) -> None:
        if len(joint_names) != config.num_actions:
            raise ValueError(f"the env has {len(joint_names)} leg joints, the controller drives {config.num_actions}")
        if abs(config.sim_dt - env_dt) > DT_TOLERANCE:
            raise ValueError(f"controller sim.dt is {config.sim_dt} s but one env step is {env_dt} s: the controller "
                             "ticks once per env step, so its gait clock and decimation would be wrong")
        if not (math.isfinite(gait_threshold) and gait_threshold >= 0):
            raise ValueError(f"gait_threshold must be finite and >= 0, got {gait_threshold}")
        self.config = config
        self.net = net
        self.gait_threshold = float(gait_threshold)
        self.default_pose = match_joints(config.default_joint_angles, joint_names, "default_joint_angles", "default")
        self.kp = match_joints(config.stiffness, joint_names, "stiffness")
        self.kd = match_joints(config.damping, joint_names, "damping")
        self.torque_low = np.asarray(torque_low, np.float64)
        self.torque_high = np.asarray(torque_high, np.float64)
        cfg = config
        self._command_scale = np.array([cfg.lin_vel, cfg.lin_vel, cfg.ang_vel])
        self._phase_step = cfg.sim_dt * cfg.gait_frequency
        self.reset()

    def reset(self) -> None:
        """Forget the episode: gait phase 0, gait off, decimation counter 0, previous actions 0, default targets."""
        self.phase = 0.0
        """Gait phase in [0, 1)."""
        self.gait_on = False
        """Whether the last command switched the gait on."""
        self.it = 0
        """Env steps since reset; the network runs when it % decimation == 0."""
        self.actions = np.zeros(self.config.num_actions)
        """The latest clipped network actions (the next observation's [35:47])."""
        self.targets = self.default_pose.copy()
        """Joint targets (rad) of the PD law."""

    def observation(self, command: np.ndarray, q: np.ndarray, qd: np.ndarray, quat_xyzw: np.ndarray,
                    gyro: np.ndarray) -> np.ndarray:
        """The float32 (47,) network input for the current state (layout in the module docstring)."""
        cfg = self.config
        gait = 2.0 * math.pi * self.phase
        on = 1.0 if self.gait_on and cfg.gait_frequency > 1e-8 else 0.0
        return np.concatenate([
            projected_gravity(quat_xyzw) * cfg.gravity,
            np.asarray(gyro, np.float64) * cfg.ang_vel,
            np.asarray(command, np.float64) * self._command_scale,
            (math.cos(gait) * on, math.sin(gait) * on),
            (q - self.default_pose) * cfg.dof_pos,
            qd * cfg.dof_vel,
            self.actions,
        ], dtype=np.float32)

    def pd(self, targets: np.ndarray, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        """Stateless PD torques toward `targets`, clipped to the env's bounds (float32 (12,))."""
        return np.clip(self.kp * (targets - q) - self.kd * qd, self.torque_low, self.torque_high).astype(np.float32)

    def action_targets(self, actions: np.ndarray) -> np.ndarray:
        """Joint targets of controller actions: q_default + action_scale * actions (used for macro frames)."""
        return self.default_pose + self.config.action_scale * np.asarray(actions, np.float64)

    def step(self, command: np.ndarray, obs: np.ndarray, info: Mapping[str, Any]) -> np.ndarray:
        """Torques (float32 (12,)) for this env step: `command` = (vx m/s, vy m/s, yaw rad/s), `obs` the raw env
        obs (q = obs[0:12], qd = obs[12:24]), `info` the env's info of the same state (robot_quat, robot_gyro)."""
        cfg = self.config
        q = np.asarray(obs[:N_JOINTS], np.float64)
        qd = np.asarray(obs[N_JOINTS:2 * N_JOINTS], np.float64)
        self.gait_on = math.hypot(*command) >= self.gait_threshold
        if self.it % cfg.decimation == 0:
            net_obs = self.observation(command, q, qd, info["robot_quat"], info["robot_gyro"])
            with torch.inference_mode():
                out = self.net(torch.from_numpy(net_obs).unsqueeze(0))
            self.actions = np.clip(out.numpy()[0].astype(np.float64), -cfg.clip_actions, cfg.clip_actions)
            self.targets = self.action_targets(self.actions)
        self.it += 1
        if self.gait_on:
            self.phase = math.fmod(self.phase + self._phase_step, 1.0)
        return self.pd(self.targets, q, qd)
