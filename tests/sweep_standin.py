"""A stand-in for workflow.training.train in the sweep tests (imported by Ray workers through PYTHONPATH):
reports a score that is the trial's --lr at every 100 timesteps, so the scheduler's decisions are known in
advance; --lr 13 raises, as a trial that fails."""

from __future__ import annotations

FAILING_LR = 13.0


def train(options, on_evaluation=None):
    if options.lr == FAILING_LR:
        raise RuntimeError("a constructed failure")
    for timestep in range(100, options.total_timesteps + 1, 100):
        on_evaluation(timestep, {"eval/mean_reward": float(options.lr)})
