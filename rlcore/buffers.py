"""Preallocated device buffers: ReplayBuffer (with a protected demo region) and RolloutBuffer (GAE).

Both are written by index and sampled with `torch.randint(..., device=)`, so nothing leaves the device
in the hot loop. Observations are stored RAW in the replay buffer and normalised at sample time with
the current statistics (SB3 VecNormalize does the same). Truncation is never stored as termination:
a transition cut by a time limit keeps its true final observation as `next_obs` and bootstraps
(SB3 issue #284).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rlcore.normalizer import RunningNormalizer


@dataclass(frozen=True, slots=True)
class Batch:
    """A sampled batch of transitions; actions are in [-1, 1]; `demo` is 1.0 on demonstration rows."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    demo: torch.Tensor | None = None

    def normalized(self, normalizer: RunningNormalizer) -> Batch:
        """The same batch with both observations normalised by the current statistics."""
        return Batch(normalizer(self.obs), self.actions, self.rewards, normalizer(self.next_obs), self.terminated,
                     self.demo)


class ReplayBuffer:
    """Ring buffer of transitions, plus an optional demonstration region the ring never overwrites.

    Storage rows [0, demo_capacity) hold demonstrations; rows [demo_capacity, demo_capacity + capacity)
    are the ring. A batch draws round(batch_size * demo_fraction) rows from the demos (when there are
    any) and the rest from the filled part of the ring.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int, device: torch.device | str = "cpu",
                 demo_capacity: int = 0, demo_fraction: float = 0.0, seed: int | None = None) -> None:
        self.capacity = capacity
        self.demo_capacity = demo_capacity
        self.demo_fraction = demo_fraction
        self.device = torch.device(device)
        rows = capacity + demo_capacity
        self.obs = torch.zeros((rows, obs_dim), dtype=torch.float32, device=self.device)
        self.next_obs = torch.zeros((rows, obs_dim), dtype=torch.float32, device=self.device)
        self.actions = torch.zeros((rows, act_dim), dtype=torch.float32, device=self.device)
        self.rewards = torch.zeros(rows, dtype=torch.float32, device=self.device)
        self.terminated = torch.zeros(rows, dtype=torch.float32, device=self.device)
        self.pos = 0          # next ring slot, in [0, capacity)
        self.size = 0         # filled ring slots
        self.demo_size = 0    # filled demo slots
        self.generator = torch.Generator(device=self.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return self.size + self.demo_size

    def add(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
            terminated: torch.Tensor) -> None:
        """Write one vector step (n_envs rows) into the ring."""
        n = obs.shape[0]
        idx = self.demo_capacity + (self.pos + torch.arange(n, device=self.device)) % self.capacity
        self._write(idx, obs, actions, rewards, next_obs, terminated)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def add_demos(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, next_obs: torch.Tensor,
                  terminated: torch.Tensor) -> None:
        """Append demonstrations to the protected region; overflowing it is an error."""
        n = obs.shape[0]
        if self.demo_size + n > self.demo_capacity:
            raise ValueError(f"{self.demo_size + n} demonstrations exceed the demo region of {self.demo_capacity}")
        idx = torch.arange(self.demo_size, self.demo_size + n, device=self.device)
        self._write(idx, obs, actions, rewards, next_obs, terminated)
        self.demo_size += n

    def _write(self, idx: torch.Tensor, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
               next_obs: torch.Tensor, terminated: torch.Tensor) -> None:
        self.obs[idx] = obs.to(self.device, torch.float32)
        self.actions[idx] = actions.to(self.device, torch.float32)
        self.rewards[idx] = rewards.to(self.device, torch.float32)
        self.next_obs[idx] = next_obs.to(self.device, torch.float32)
        self.terminated[idx] = terminated.to(self.device, torch.float32)

    def sample(self, batch_size: int) -> Batch:
        """Uniform batch over written rows only (demos share per demo_fraction); raw observations."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        n_demo = 0
        if self.demo_size:
            n_demo = batch_size if self.size == 0 else round(batch_size * self.demo_fraction)
        ring = self.demo_capacity + torch.randint(0, max(self.size, 1), (batch_size - n_demo,),
                                                  device=self.device, generator=self.generator)
        if n_demo:
            demo = torch.randint(0, self.demo_size, (n_demo,), device=self.device, generator=self.generator)
            idx = torch.cat([demo, ring])
        else:
            idx = ring
        is_demo = torch.zeros(batch_size, device=self.device)
        is_demo[:n_demo] = 1.0
        rows = (torch.index_select(getattr(self, k), 0, idx) for k in _FIELDS)  # ~3x faster than t[idx] on a CPU
        return Batch(*rows, is_demo)  # _FIELDS is Batch's field order

    def state_dict(self) -> dict:
        """Filled contents and counters (optional part of a checkpoint)."""
        ring = slice(self.demo_capacity, self.demo_capacity + self.size)
        demo = slice(0, self.demo_size)
        return {
            "capacity": self.capacity, "demo_capacity": self.demo_capacity, "pos": self.pos, "size": self.size,
            "demo_size": self.demo_size, "generator": self.generator.get_state(),
            "ring": {k: getattr(self, k)[ring].cpu() for k in _FIELDS},
            "demo": {k: getattr(self, k)[demo].cpu() for k in _FIELDS},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict` output into a buffer of the same capacities."""
        if state["capacity"] != self.capacity or state["demo_capacity"] != self.demo_capacity:
            raise ValueError(f"replay capacity mismatch: saved ({state['capacity']}, {state['demo_capacity']}), "
                             f"now ({self.capacity}, {self.demo_capacity})")
        self.pos, self.size, self.demo_size = state["pos"], state["size"], state["demo_size"]
        self.generator.set_state(state["generator"])
        for k in _FIELDS:
            getattr(self, k)[self.demo_capacity:self.demo_capacity + self.size] = state["ring"][k].to(self.device)
            getattr(self, k)[:self.demo_size] = state["demo"][k].to(self.device)


_FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")


@dataclass(frozen=True, slots=True)
class RolloutBatch:
    """A PPO minibatch: policy inputs (already normalised at collection time), old log-probs, targets."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class RolloutBuffer:
    """n_steps x n_envs on-policy storage with GAE(lambda).

    Observations are stored as the policy saw them (normalised with the statistics of that moment), so
    the first PPO epoch starts at ratio 1 even though the normaliser keeps moving (SB3 stores
    VecNormalize's output). On a truncated step the caller adds gamma * V(final obs) to the reward
    before `add` (bootstrap on truncation, SB3 #633); `episode_ends` marks both kinds of ends.
    """

    def __init__(self, n_steps: int, n_envs: int, obs_dim: int, act_dim: int, device: torch.device | str = "cpu",
                 seed: int | None = None) -> None:
        self.n_steps, self.n_envs = n_steps, n_envs
        self.device = torch.device(device)
        shape = (n_steps, n_envs)
        self.obs = torch.zeros((*shape, obs_dim), dtype=torch.float32, device=self.device)
        self.actions = torch.zeros((*shape, act_dim), dtype=torch.float32, device=self.device)
        self.rewards = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.episode_ends = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.values = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.log_probs = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.advantages = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.returns = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.last_obs = torch.zeros((n_envs, obs_dim), dtype=torch.float32, device=self.device)
        self.step = 0
        self.generator = torch.Generator(device=self.device)
        if seed is not None:
            self.generator.manual_seed(seed)

    @property
    def full(self) -> bool:
        return self.step == self.n_steps

    def add(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, episode_ends: torch.Tensor) -> None:
        """Store one vector step; `rewards` already include the truncation bootstrap. `values` and
        `log_probs` are filled for the whole rollout by the algorithm before computing advantages."""
        t = self.step
        self.obs[t] = obs
        self.actions[t] = actions
        self.rewards[t] = rewards
        self.episode_ends[t] = episode_ends
        self.step += 1

    def finish(self, last_obs: torch.Tensor) -> None:
        """Close the full rollout with the policy input after its last step (normalised like `obs`): the
        observation whose value bootstraps the episodes still running."""
        self.last_obs.copy_(last_obs)

    def compute_returns_and_advantages(self, last_values: torch.Tensor, gamma: float, gae_lambda: float) -> None:
        """GAE backwards over the rollout; `last_values` = V(obs after the last step), shape (n_envs,).

        The recursion is sequential in time, so it runs in numpy on the host (per rollout, four copies to
        the host and one back: five syncs on a GPU): as torch ops, each of the n_steps iterations cost
        ~20 us in dispatch alone on a CPU (~40 ms per 2048-step rollout), and on a GPU each op is one kernel
        launch.
        """
        rewards, values = self.rewards.cpu().numpy(), self.values.cpu().numpy()
        next_nonterminal = 1.0 - self.episode_ends.cpu().numpy()
        next_values = np.concatenate([values[1:], last_values.cpu().numpy()[None]])
        deltas = rewards + gamma * next_values * next_nonterminal - values
        decay = gamma * gae_lambda * next_nonterminal
        advantages = np.empty_like(deltas)
        gae = np.zeros_like(deltas[0])
        for t in reversed(range(self.n_steps)):
            gae = deltas[t] + decay[t] * gae
            advantages[t] = gae
        self.advantages.copy_(torch.from_numpy(advantages))
        self.returns = self.advantages + self.values

    def minibatches(self, batch_size: int) -> list[RolloutBatch]:
        """One shuffled pass over the rollout in minibatches of `batch_size` (the last may be smaller).

        The rollout is permuted once (one gather per field); minibatches are contiguous views of it.
        """
        total = self.n_steps * self.n_envs
        perm = torch.randperm(total, device=self.device, generator=self.generator)
        shuffled = {k: getattr(self, k).reshape(total, *getattr(self, k).shape[2:])[perm]
                    for k in ("obs", "actions", "log_probs", "values", "advantages", "returns")}
        return [RolloutBatch(**{k: v[start:start + batch_size] for k, v in shuffled.items()})
                for start in range(0, total, batch_size)]

    def reset(self) -> None:
        """Start a new rollout (storage is reused)."""
        self.step = 0
