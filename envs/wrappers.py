"""Wrappers around one sai_mujoco soccer env: action modes, reward profiles, the 89-dim observation.

Chain built by envs/factory.make_env from its one definition, envs/factory.WRAPPER_CHAIN; innermost first:
  gym.make (TimeLimit 5000, 500 Hz, 1 physics step per env step), or the fast twin (envs/fastsim.py)
  -> action mode: `TorqueAction` (default) or `PDAction`      (policy acts in Box(-1, 1, (12,)))
                 or `CommandAction` (envs/command.py)        (Box(-1, 1, (3,)): walking controller + kick macro)
                 or, pd on the fast twin, `FusedPDRepeat`    (PD law and action repeat in one loop)
  -> `ActionRepeat` (only when action_repeat > 1 and not fused)
  -> `PreprocessObs`                                          (obs becomes the float32 89-dim vector)
  -> reward profile: `CompetitionReward` (default), `ShapedEnvReward` (pressure_shot / tight), none (env)
  -> `MacroBonus` (envs/command.py; only with a macro reward in the command mode)
  -> `LeanInfo` (only on request: training vector envs)
  -> `outer` (make_env's last wrapper, when given)

Reward profiles:
* `competition`: potential-based shaping on the official score. With the task's official weights w_k
  (without the constant `steps` term), Phi(s) = sum_k w_k * term_k(s), and
      r_t = Phi(s_{t+1}) - Phi(s_t),   Phi(s_0) computed at reset.
  The undiscounted return telescopes to Phi(s_T) - Phi(s_0) = (official score - steps weight) - Phi(s_0),
  so it ranks episodes exactly as the competition does: a fall costs the same 1.5 (robot_fallen) as in
  the score, so falling never pays more than the same episode standing to truncation. (With gamma < 1
  the discounted return weights late changes of Phi less; the undiscounted identity is what is tested.)
* `env`: the raw env reward (misaligned: +15 per step after the first touch, docs/sai_mujoco.md).
* `pressure_shot`, `tight`: the env reward with rescaled env weights plus a truncation penalty and a
  shot bonus (docs/seed_pipeline.md). They build on the env reward, so they inherit its bias.

`info` keeps `reward_terms` and gains `task_index` (our one-hot) and `task_name`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from envs.preprocess import OBS_DIM, preprocess_step
from envs.tasks import Task

T1_DEFAULT_POSE = np.tile([-0.2, 0.0, 0.0, 0.4, -0.25, 0.0], 2)
"""Default leg pose (rad), per leg: hip pitch, hip roll, hip yaw, knee, ankle pitch, ankle roll; L then R."""
T1_KP = np.tile([200.0, 200.0, 200.0, 200.0, 50.0, 50.0], 2)
"""T1 joint stiffness (N·m/rad), same order."""
T1_KD = np.tile([5.0, 5.0, 5.0, 5.0, 1.0, 1.0], 2)
"""T1 joint damping (N·m·s/rad), same order."""
T1_TORQUE_LIMIT = np.tile([45.0, 45.0, 30.0, 65.0, 24.0, 15.0], 2)
"""The env's symmetric torque bounds (N·m); wrappers read the bounds from the env's action space."""
ANKLE_PITCH = (4, 10)
"""Indices of the two ankle-pitch joints."""

DEFAULT_PD_SCALE = 1.0
"""PD-mode offset (rad) for an action of 1: the T1 walking controller's action_scale."""

StepResult = tuple[np.ndarray, SupportsFloat, bool, bool, dict]

REWARD_PROFILES = ("competition", "env", "pressure_shot", "tight")
ENV_REWARD_PROFILES = ("env", "pressure_shot", "tight")
"""Profiles built on the env's own dense reward, which is misaligned with the score."""


def pd_torques(targets: np.ndarray, q: np.ndarray, qd: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """T1 PD law, clip(Kp (targets - q) - Kd qd, low, high); shapes (12,) or (N, 12)."""
    return np.clip(T1_KP * (targets - q) - T1_KD * qd, low, high)


def _unit_box(n: int) -> gym.spaces.Box:
    return gym.spaces.Box(-1.0, 1.0, (n,), np.float32)


class TorqueAction(gym.ActionWrapper):
    """Policy action in [-1, 1]^12 mapped affinely onto the env's torque bounds (-1 -> low, +1 -> high)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.low = env.action_space.low.astype(np.float64)
        self.high = env.action_space.high.astype(np.float64)
        self._mid = (self.high + self.low) / 2.0
        self._half = (self.high - self.low) / 2.0
        self.action_space = _unit_box(self.low.shape[0])

    def action(self, action: np.ndarray) -> np.ndarray:
        """Torques (N·m) for a [-1, 1] action."""
        return (self._mid + self._half * np.clip(action, -1.0, 1.0)).astype(np.float32)


class PDAction(gym.Wrapper):
    """Policy action = joint-position offsets in [-1, 1] times `scale` (rad) around the default pose.

    The T1 PD law turns the targets into torques, clipped to the env's bounds, from the joint positions
    and velocities of the latest raw obs (obs[0:12], obs[12:24]); under ActionRepeat the torques are
    recomputed at every physics step.
    """

    def __init__(self, env: gym.Env, scale: float):
        super().__init__(env)
        self.scale = float(scale)
        self.low = env.action_space.low.astype(np.float64)
        self.high = env.action_space.high.astype(np.float64)
        self.action_space = _unit_box(self.low.shape[0])
        self._q = self._qd = np.zeros(self.low.shape[0])

    def torques(self, action: np.ndarray) -> np.ndarray:
        """The torques the next env step applies for `action`, given the current joint state."""
        targets = T1_DEFAULT_POSE + self.scale * np.clip(action, -1.0, 1.0)
        return pd_torques(targets, self._q, self._qd, self.low, self.high)

    def _remember(self, obs: np.ndarray) -> None:
        self._q, self._qd = obs[:12].astype(np.float64), obs[12:24].astype(np.float64)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self._remember(obs)
        return obs, info

    def step(self, action: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(self.torques(action).astype(np.float32))
        self._remember(obs)
        return obs, reward, terminated, truncated, info


class ActionRepeat(gym.Wrapper):
    """Repeat each action for `k` inner steps, summing rewards; stops early at termination or truncation.

    Adds `info["physics_steps"]`, the number of inner steps actually taken.
    """

    def __init__(self, env: gym.Env, k: int):
        super().__init__(env)
        if k < 1:
            raise ValueError(f"action_repeat must be >= 1, got {k}")
        self.k = k

    def step(self, action: np.ndarray) -> StepResult:
        total, steps = 0.0, 0
        while steps < self.k:
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            steps += 1
            if terminated or truncated:
                break
        info["physics_steps"] = steps
        return obs, total, terminated, truncated, info


class PreprocessObs(gym.Wrapper):
    """Replace the raw obs by the 89-dim observation; add `task_index` (our one-hot) and `task_name`."""

    def __init__(self, env: gym.Env, task: Task):
        super().__init__(env)
        self.task = task
        self._one_hot = task.one_hot
        self._one_hot.setflags(write=False)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)

    def _tag(self, info: dict) -> dict:
        info["task_index"] = self._one_hot
        info["task_name"] = self.task.name
        return info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        return preprocess_step(obs, info, self._one_hot), self._tag(info)

    def step(self, action: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return preprocess_step(obs, info, self._one_hot), reward, terminated, truncated, self._tag(info)


_CONTACT_STATE = ("ball_hits_by_robot", "_ball_contact_active")


def reward_terms_now(base_env: Any) -> dict:
    """`compute_reward()` of the base env's current state, without its side effect.

    PenaltyKick's compute_reward counts a NEW robot-ball contact (`ball_hits_by_robot`,
    `_ball_contact_active`; sai_mujoco football/v0/penalty_kick.py). Calling it at reset could move a
    contact to an earlier call than the env's own, so the counters are restored afterwards.
    """
    saved = {name: getattr(base_env, name) for name in _CONTACT_STATE if hasattr(base_env, name)}
    terms = base_env.compute_reward()
    for name, value in saved.items():
        setattr(base_env, name, value)
    return terms


class CompetitionReward(gym.Wrapper):
    """Potential-based shaping on the official score: r_t = Phi(s_{t+1}) - Phi(s_t) (module docstring)."""

    def __init__(self, env: gym.Env, task: Task):
        super().__init__(env)
        self._weights = tuple((k, w) for k, w in task.score_weights.items() if k != "steps")
        self.phi = 0.0
        """Phi of the current state."""

    def potential(self, terms: Mapping[str, Any]) -> float:
        """Phi = sum_k w_k * term_k over the official weights without `steps` (a missing term counts 0)."""
        return sum(w * float(terms[k]) for k, w in self._weights if k in terms)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self.phi = self.potential(reward_terms_now(self.env.unwrapped))
        return obs, info

    def step(self, action: np.ndarray) -> StepResult:
        obs, _, terminated, truncated, info = self.env.step(action)
        phi = self.potential(info["reward_terms"])
        reward, self.phi = phi - self.phi, phi
        return obs, reward, terminated, truncated, info


@dataclass(frozen=True)
class ShapingProfile:
    """Constants of the pressure_shot / tight profiles (docs/seed_pipeline.md)."""

    timeout_penalty: float
    """Added once when an episode is truncated without terminating."""
    shot_bonus: float
    """Added on every step that shows a shot attempt."""
    goal_scale: float
    """Factor on positive env weights whose name contains goal/score/success."""
    timeout_scale: float
    """Factor on negative env weights whose name contains a timeout word."""
    shot_scale: float
    """Factor on positive env weights whose name contains shot/kick/strike."""


SHAPING_PROFILES = {
    "pressure_shot": ShapingProfile(-0.05, 0.02, 1.1, 1.5, 1.1),
    "tight": ShapingProfile(-0.1, 0.05, 1.2, 2.0, 1.2),
}
_GOAL_WORDS = re.compile("goal|score|success", re.IGNORECASE)
_SHOT_WORDS = re.compile("shot|kick|strike", re.IGNORECASE)
_TIMEOUT_WORDS = re.compile("timeout|time_out|time_penalty|stall", re.IGNORECASE)


def adjust_reward_config(config: Mapping[str, float], profile: str) -> dict[str, float]:
    """A rescaled copy of an env's `reward_config` for a shaping profile (note: ball_vel_twd_goal matches)."""
    p = SHAPING_PROFILES[profile]
    out = {}
    for key, weight in config.items():
        if weight > 0 and _GOAL_WORDS.search(key):
            weight *= p.goal_scale
        if weight > 0 and _SHOT_WORDS.search(key):
            weight *= p.shot_scale
        if weight < 0 and _TIMEOUT_WORDS.search(key):
            weight *= p.timeout_scale
        out[key] = weight
    return out


def _is_positive(value: Any) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.number)) and value > 0


def _shot_attempt(info: Mapping[str, Any]) -> bool:
    """Any reward term or top-level info key naming a shot/kick/strike with a positive or True value."""
    terms = info.get("reward_terms", {})
    return any(_SHOT_WORDS.search(k) and _is_positive(v) for k, v in terms.items()) or any(
        _SHOT_WORDS.search(k) and _is_positive(v) for k, v in info.items()
    )


class ShapedEnvReward(gym.Wrapper):
    """The env reward plus the pressure_shot / tight shaping terms (make_env also rescales the env weights).

    The sai_mujoco envs expose no shot/kick/strike terms, so the shot bonus never fires there; it is kept
    for parity with the seed's definition.
    """

    def __init__(self, env: gym.Env, profile: str):
        super().__init__(env)
        self.profile = SHAPING_PROFILES[profile]
        keys = list(getattr(env.unwrapped, "reward_config", {}))
        self.apply_timeout = not any(_TIMEOUT_WORDS.search(k) for k in keys)
        self.apply_shot = not any(_SHOT_WORDS.search(k) for k in keys)

    def step(self, action: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        shaped = float(reward)
        if self.apply_timeout and truncated and not terminated:
            shaped += self.profile.timeout_penalty
        if self.apply_shot and _shot_attempt(info):
            shaped += self.profile.shot_bonus
        return obs, shaped, terminated, truncated, info


class LeanInfo(gym.Wrapper):
    """Drop the info dict except the episode's terminal `reward_terms`.

    gymnasium vector envs aggregate every info key every step; with the ~30 keys a SyncVectorEnv of one
    env ran 22% below bare stepping, 10% with lean info (bench/env_overhead.py). Training needs none of
    them: the final obs travels separately.
    """

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, _ = self.env.reset(**kwargs)
        return obs, {}

    def step(self, action: np.ndarray) -> StepResult:
        obs, reward, terminated, truncated, info = self.env.step(action)
        lean = {"reward_terms": info["reward_terms"]} if terminated or truncated else {}
        return obs, reward, terminated, truncated, lean


ACTION_MODES = ("torque", "pd", "command")
"""What the policy outputs: torques (`TorqueAction`), PD offsets (`PDAction`), or a walking command
(`CommandAction` in envs/command.py, which needs the controller files; envs/factory builds each)."""
