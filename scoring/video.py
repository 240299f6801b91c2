"""Record one episode of a policy as a GIF (headless: set MUJOCO_GL=egl before mujoco is imported)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import imageio

from envs.command import CommandOptions
from envs.factory import make_env
from envs.wrappers import DEFAULT_PD_SCALE
from scoring.harness import Policy


def record_video(
    policy: Policy,
    task: str,
    path: str | Path,
    *,
    seed: int,
    frame_every: int = 20,
    size: tuple[int, int] = (480, 270),
    action_mode: str = "torque",
    action_repeat: int = 1,
    pd_scale: float = DEFAULT_PD_SCALE,
    command: CommandOptions | None = None,
    outer: Callable[[gym.Env], gym.Env] | None = None,
) -> int:
    """Play one episode from reset seed `seed` and write every `frame_every`-th frame to a GIF at real-time
    speed (the env runs at 500 Hz). A frame costs ~50-150 ms to render on CPU, hence the subsampling.
    With action_repeat k a decision spans k physics steps, so a frame is taken every frame_every decisions
    of k steps each (the GIF timing accounts for it). Returns the number of frames written."""
    env = make_env(task, action_mode=action_mode, action_repeat=action_repeat, pd_scale=pd_scale, command=command,
                   render_mode="rgb_array", render_size=size, outer=outer)()
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        steps = 0
        while True:
            obs, _, terminated, truncated, _ = env.step(policy(obs[None])[0])
            steps += 1
            if terminated or truncated or steps % frame_every == 0:
                frames.append(env.render())
            if terminated or truncated:
                break
    finally:
        env.close()
    imageio.mimsave(path, frames, duration=1000.0 * frame_every * action_repeat / 500.0, loop=0)
    return len(frames)
