"""The evaluation harness: run any policy callable over tasks x eval seeds x episodes, score officially.

A policy maps a float32 batch of 89-dim observations (N, 89) to actions (N, A) in the wrapped env's
action space ([-1, 1]; A = 12, or 3 in the command action mode). Episodes of one task run in lock-step
on a batch of envs, one policy call per step for the whole batch, so network policies pay one forward
pass per step. Each env runs episodes one after
another; every episode gets its own reset seed (rlcore/seeds.py, the one scheme of every evaluation)

    reset_seed = eval_seed * 1_000_000 + task_index * 100_000 + episode     (episode < 100_000)

so no two episodes share a seed, across the seed list and the tasks (unlike the seed pipeline, whose
seed + 1000 * task + episode overlapped). An episode depends only on its reset seed and the policy, so
results do not depend on the batch size for any policy that acts row by row deterministically.

Scores: each episode is scored from its terminal step's raw terms (scoring/report.py). C_overall is the
sum over tasks of the per-task mean score (the seed's `comp_total_sum`); C_mean is the mean over tasks.
In the command action mode with a kick macro, each record keeps the episode's macro trigger count and the
task summary gains `macro_trigger_rate` (scoring/report.py).
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import gymnasium as gym
import numpy as np

from envs.command import CommandOptions
from envs.factory import make_env
from envs.lockstep import Step, policy_act, run_lockstep
from envs.tasks import KTT_STEPS_WEIGHT, get_task
from envs.wrappers import DEFAULT_PD_SCALE
from rlcore.seeds import MAX_EPISODES, episode_seed
from scoring.report import EpisodeRecord, aggregate, episode_report, plain_terms

Policy = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[EpisodeRecord, int, int], None]
"""Called after every finished episode with (record, episodes done for its task, episodes of the task)."""

def run_task(
    policy: Policy,
    task: str,
    eval_seeds: Sequence[int],
    episodes: int,
    *,
    batch_size: int = 8,
    action_mode: str = "torque",
    action_repeat: int = 1,
    pd_scale: float = DEFAULT_PD_SCALE,
    max_episode_steps: int | None = None,
    command: CommandOptions | None = None,
    progress: Progress | None = None,
    sim: str = "official",
    outer: Callable[[gym.Env], gym.Env] | None = None,
) -> list[EpisodeRecord]:
    """Run `episodes` episodes per eval seed of one task; records in (seed, episode) order.

    `command` configures action_mode "command", `sim` the simulator, `outer` a last wrapper (envs.factory.make_env).
    """
    if not 1 <= episodes <= MAX_EPISODES:
        raise ValueError(f"episodes must be in [1, {MAX_EPISODES}], got {episodes}")
    if len(set(eval_seeds)) != len(eval_seeds) or not eval_seeds:
        raise ValueError(f"eval seeds must be a non-empty list of distinct values, got {list(eval_seeds)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    index = get_task(task).index
    reset_seeds = [episode_seed(s, index, e) for s in eval_seeds for e in range(episodes)]
    thunk = make_env(
        task,
        action_mode=action_mode,
        action_repeat=action_repeat,
        pd_scale=pd_scale,
        max_episode_steps=max_episode_steps,
        command=command,
        sim=sim,
        outer=outer,
    )
    records: list[EpisodeRecord | None] = [None] * len(reset_seeds)
    lengths = [0] * len(reset_seeds)
    finished = 0

    def on_step(step: Step) -> None:
        nonlocal finished
        lengths[step.episode] += step.info.get("physics_steps", 1)
        if not step.done:
            return
        record = EpisodeRecord(
            task, reset_seeds[step.episode], plain_terms(step.info["reward_terms"]), lengths[step.episode],
            step.terminated, step.truncated, step.info.get("macro_trigger_count"),
        )
        records[step.episode] = record
        finished += 1
        if progress is not None:
            progress(record, finished, len(reset_seeds))

    run_lockstep(thunk, reset_seeds, policy_act(policy), on_step, batch_size)
    return records


@dataclass(frozen=True)
class EvalResult:
    """Episode records per task (in evaluation order) and the steps weight they are scored with."""

    records: dict[str, list[EpisodeRecord]]
    ktt_steps_weight: float = KTT_STEPS_WEIGHT

    @functools.cached_property
    def _summaries(self) -> dict[str, dict[str, float]]:
        return {task: aggregate(records, self.ktt_steps_weight) for task, records in self.records.items()}

    def summary(self, task: str) -> dict[str, float]:
        """aggregate() of one task's episodes (computed once per result; a fresh copy per call)."""
        return dict(self._summaries[task])

    @property
    def c_overall(self) -> float:
        """Sum over the evaluated tasks of the mean episode score (not comparable across task sets)."""
        return float(sum(summary["comp_total_mean"] for summary in self._summaries.values()))

    @property
    def c_mean(self) -> float:
        """Mean over the evaluated tasks of the mean episode score."""
        return self.c_overall / len(self.records)


def evaluate(
    policy: Policy,
    tasks: Sequence[str],
    episodes: int,
    eval_seeds: Sequence[int],
    *,
    ktt_steps_weight: float = KTT_STEPS_WEIGHT,
    batch_size: int = 8,
    action_mode: str = "torque",
    action_repeat: int = 1,
    pd_scale: float = DEFAULT_PD_SCALE,
    max_episode_steps: int | None = None,
    command: CommandOptions | None = None,
    progress: Progress | None = None,
    sim: str = "official",
    outer: Callable[[gym.Env], gym.Env] | None = None,
) -> EvalResult:
    """Run `episodes` episodes per eval seed on every task, in the given task order."""
    records = {
        task: run_task(
            policy, task, eval_seeds, episodes,
            batch_size=batch_size, action_mode=action_mode, action_repeat=action_repeat,
            pd_scale=pd_scale, max_episode_steps=max_episode_steps, command=command, progress=progress, sim=sim,
            outer=outer,
        )
        for task in tasks
    }
    return EvalResult(records, ktt_steps_weight)


def result_to_json(result: EvalResult) -> dict:
    """The JSON document evaluate.py writes (other tools parse it; keep the shape):
    {"tasks": {TASK: {"comp_total_mean", "comp_total_std", "success_rate", "offside_rate", "fallen_rate",
    "ep_len_mean", other aggregate() keys, "episodes": [{"seed", "comp_total", "terms", "length",
    "terminated", "truncated"}]}}, "C_overall", "C_mean"}."""
    tasks = {}
    for task, records in result.records.items():
        entry: dict = result.summary(task)
        entry["episodes"] = [
            {
                "seed": r.seed,
                "comp_total": episode_report(r.terms, task, result.ktt_steps_weight)["comp_total"],
                "terms": r.terms,
                "length": r.length,
                "terminated": r.terminated,
                "truncated": r.truncated,
            }
            for r in records
        ]
        tasks[task] = entry
    return {"tasks": tasks, "C_overall": result.c_overall, "C_mean": result.c_mean}


def format_table(result: EvalResult) -> str:
    """A printable table: one row per task, then C_overall (sum) and C_mean."""
    lines = [f"{'task':<24}{'comp_total':>18}{'success':>9}{'offside':>9}{'fallen':>8}{'ep_len':>9}{'eps':>5}"]
    for task in result.records:
        s = result.summary(task)
        total = f"{s['comp_total_mean']:+.3f} ± {s['comp_total_std']:.3f}"
        lines.append(
            f"{task:<24}{total:>18}{s['success_rate']:>9.2f}{s['offside_rate']:>9.2f}"
            f"{s['fallen_rate']:>8.2f}{s['ep_len_mean']:>9.1f}{s['n_episodes']:>5d}"
        )
    lines.append(f"C_overall (sum over {len(result.records)} tasks): {result.c_overall:+.3f}")
    lines.append(f"C_mean (mean over tasks): {result.c_mean:+.3f}")
    return "\n".join(lines)


class ProgressPrinter:
    """A `Progress` callback printing one line per finished episode, with the time since its creation.

    Prints to `stream`, or to whatever sys.stderr is at print time when None.
    """

    def __init__(self, ktt_steps_weight: float = KTT_STEPS_WEIGHT, stream: TextIO | None = None):
        self.ktt_steps_weight = ktt_steps_weight
        self.stream = stream
        self.start = time.perf_counter()

    def __call__(self, record: EpisodeRecord, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.start
        score = episode_report(record.terms, record.task, self.ktt_steps_weight)["comp_total"]
        print(
            f"[{elapsed:7.1f}s] {record.task} {done}/{total}: seed {record.seed} "
            f"length {record.length} comp_total {score:+.3f}",
            file=self.stream if self.stream is not None else sys.stderr,
            flush=True,
        )
