"""Mutation check: would the fast test suite notice a broken training loop?

Each mutant is a one-line change to product code: (file, exact old text, new text, what it breaks). For
each, the repository (its git-tracked and untracked non-ignored files) is copied to a temporary folder,
the mutant is applied THERE (the old text must occur exactly once, or the script stops), and the fast
suite runs in the copy:

    python -m pytest -q -x -m "not slow" -p no:cacheprovider tests

(first on the mutant's likely killers alone, so a killed mutant stops early). A mutant is killed when a
test fails (or a run passes the --timeout); it survives when the whole fast suite passes. The working tree
is never modified. Before the mutants, the script checks that the copy's code is what its tests import (an
editable install points at the working tree: PYTHONPATH puts the copy first) and, unless --no-baseline,
that the unmutated copy passes. Exit status 1 when a mutant survived.

The first ten mutants are the survivors of issue 17's mutation experiments (each survived the test suite
before that issue); the rest are controls: other one-line breaks of the same code (most were killed before
issue 17; resume_replay_not_restored only by a slow test) and the undoing of the two resume fixes it made.

    python bench/mutants.py                                  # all mutants, the whole fast suite
    python bench/mutants.py --only ppo_ --no-baseline        # mutants whose name contains ppo_
    python bench/mutants.py --tests tests/test_rlcore_runner.py --only runner_   # quick iteration
    python bench/mutants.py --list
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAST = ["-q", "-x", "-m", "not slow", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    description: str
    killers: tuple[str, ...] = ()
    """Test files likely to kill it: run first, so -x stops early (the verdict is the whole suite's)."""


EPISODE_ENDS = "tests/test_rlcore_episode_ends.py"
RESUME = "tests/test_rlcore_resume.py"
RUNNER = "tests/test_rlcore_runner.py"
ALGOS = "tests/test_rlcore_algos.py"
BUFFERS = "tests/test_rlcore_buffers_normalizer.py"
CRASH = "tests/test_crash_resume.py"
COMMAND = "tests/test_envs_command.py"

MUTANTS = (
    # ---- the ten survivors of issue 17
    Mutant("runner_terminated_always_0", "rlcore/runner.py",
           "torch.as_tensor(terminated, dtype=torch.float32, device=self.device))",
           "torch.zeros(self.n_envs, device=self.device))",
           "off-policy runner stores terminated = 0 on every transition", (EPISODE_ENDS,)),
    Mutant("ppo_no_truncation_bootstrap", "rlcore/runner.py", "if bootstrap.any():", "if False:",
           "PPO never adds gamma * V(final obs) on a truncation", (EPISODE_ENDS,)),
    Mutant("ppo_bootstrap_on_termination", "rlcore/runner.py", "bootstrap = truncated & ~terminated",
           "bootstrap = truncated | terminated", "PPO bootstraps terminated episodes too", (EPISODE_ENDS,)),
    Mutant("ppo_truncation_not_episode_end", "rlcore/runner.py",
           "torch.as_tensor(terminated | truncated, dtype=torch.float32",
           "torch.as_tensor(terminated, dtype=torch.float32",
           "PPO's GAE runs through truncations (only terminations end an episode)", (EPISODE_ENDS,)),
    Mutant("replay_next_obs_unnormalised", "rlcore/buffers.py", "normalizer(self.next_obs)", "self.next_obs",
           "replay batches normalise obs but leave next_obs raw", (EPISODE_ENDS,)),
    Mutant("resume_reset_seed_not_offset", "rlcore/runner.py",
           "self.env.reset(seed=self.run.seed + self.timesteps)", "self.env.reset(seed=self.run.seed)",
           "a resumed run resets its envs with the first episode's seed again", (RESUME,)),
    Mutant("resume_rng_not_restored", "rlcore/runner.py", 'set_rng_state(checkpoint["rng"])', "pass",
           "a resumed run keeps whatever python/numpy/torch RNG states it started with", (RESUME,)),
    Mutant("resume_episode_returns_lost", "rlcore/runner.py",
           'self.episode_returns.extend(state.get("episode_returns", []))', "pass",
           "a resumed run's rollout/ep_rew_mean forgets the episodes before the checkpoint", (RESUME,)),
    Mutant("harness_zero_macro_triggers", "scoring/harness.py", 'step.info.get("macro_trigger_count"),',
           'step.info.get("macro_trigger_count") and 0,',
           "the evaluation harness records 0 macro triggers for every command-mode episode", (COMMAND,)),
    Mutant("stale_temp_sweep_removed", "workflow/builders.py", "for stale in remove_stale_temp_files(save_dir):",
           "for stale in []:", "train.py no longer sweeps the temporaries a killed run left", (CRASH,)),
    # ---- controls, and the two fixes of issue 17 undone
    Mutant("runner_truncation_as_termination", "rlcore/runner.py",
           "torch.as_tensor(terminated, dtype=torch.float32, device=self.device))",
           "torch.as_tensor(terminated | truncated, dtype=torch.float32, device=self.device))",
           "off-policy runner stores truncations as terminations (SB3#284)", (RUNNER, EPISODE_ENDS)),
    Mutant("runner_final_obs_dropped", "rlcore/runner.py", 'mask = infos.get("_final_obs")', "mask = None",
           "ended episodes store the next episode's reset obs as next_obs", (RUNNER, EPISODE_ENDS)),
    Mutant("runner_batches_unnormalised", "rlcore/runner.py",
           "replay.sample(cfg.buffer.batch_size).normalized(algo.normalizer)",
           "replay.sample(cfg.buffer.batch_size)", "off-policy updates get raw observations", (EPISODE_ENDS,)),
    Mutant("replay_obs_unnormalised", "rlcore/buffers.py", "Batch(normalizer(self.obs),", "Batch(self.obs,",
           "replay batches leave obs raw", (EPISODE_ENDS,)),
    Mutant("td3_target_ignores_termination", "rlcore/algos/td3.py",
           "cfg.gamma * (1.0 - batch.terminated) * torch.minimum", "cfg.gamma * torch.minimum",
           "TD3 bootstraps through terminations", (ALGOS, EPISODE_ENDS)),
    Mutant("td3_target_max_q", "rlcore/algos/td3.py", "torch.minimum(q1_next, q2_next)",
           "torch.maximum(q1_next, q2_next)", "TD3 target takes the larger of the twin critics", (ALGOS,)),
    Mutant("sac_target_ignores_termination", "rlcore/algos/sac.py",
           "self.cfg.gamma * (1.0 - batch.terminated) * soft_q_next", "self.cfg.gamma * soft_q_next",
           "SAC bootstraps through terminations", (ALGOS, EPISODE_ENDS)),
    Mutant("gae_decay_crosses_episode_ends", "rlcore/buffers.py",
           "decay = gamma * gae_lambda * next_nonterminal", "decay = gamma * gae_lambda",
           "GAE carries advantages across episode ends", (BUFFERS, EPISODE_ENDS)),
    Mutant("gae_delta_bootstraps_across_ends", "rlcore/buffers.py",
           "deltas = rewards + gamma * next_values * next_nonterminal - values",
           "deltas = rewards + gamma * next_values - values",
           "GAE's TD error bootstraps from the next episode's first value", (BUFFERS,)),
    Mutant("resume_replay_not_restored", "rlcore/runner.py",
           'self.replay.load_state_dict(checkpoint["replay"])', "pass",
           "a resumed run starts with an empty replay despite --save-replay", (RESUME,)),
    Mutant("resume_timesteps_reset", "rlcore/runner.py", 'self.timesteps = state.get("timesteps", 0)',
           "self.timesteps = 0", "a resumed run counts timesteps from 0 (and warms up again)", (RUNNER, RESUME)),
    Mutant("resume_rollout_order_not_restored", "rlcore/runner.py",
           'self.rollout.generator.set_state(state["rollout_generator"])', "pass",
           "a resumed PPO run replays the first rollouts' minibatch order", (RESUME,)),
    Mutant("ppo_checkpoint_inside_rollout", "rlcore/runner.py", "if not between_updates:", "if False:",
           "PPO checkpoints (and evaluates) before the collected rollout's update", (RESUME,)),
)


def copy_tree(dest: Path) -> None:
    """The repository's tracked and untracked non-ignored files (no venv, caches, runs) into dest."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if not src.is_file() or "__pycache__" in Path(rel).parts:
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def mutated(copy: Path, mutant: Mutant) -> str:
    """The mutant's file in `copy` with the change made; SystemExit unless the old text occurs exactly once."""
    text = (copy / mutant.file).read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"error: mutant {mutant.name}: {mutant.old!r} occurs {count} times in {mutant.file}, "
                         "need exactly once (the code changed: update the mutant)")
    return text.replace(mutant.old, mutant.new)


def copy_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale .pyc when a mutant keeps a file's size and mtime second
    env.setdefault("MUJOCO_GL", "egl")
    return env


def check_imports(copy: Path) -> None:
    """The copy's modules are the ones its tests import (not the editable install's working tree)."""
    modules = ("rlcore.runner", "rlcore.buffers", "scoring.harness", "train", "tests.scripted_env")
    code = f"import importlib; print('\\n'.join(importlib.import_module(m).__file__ for m in {modules!r}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=copy_env(copy), check=True,
                         capture_output=True, text=True).stdout.split()
    outside = [f for f in out if not Path(f).resolve().is_relative_to(copy.resolve())]
    if outside or len(out) != len(modules):
        raise SystemExit(f"error: the copy imports code from outside itself: {outside or out}")


def pytest(copy: Path, paths: list[str], timeout: float) -> tuple[bool, str]:
    """(passed, first failure or summary) of one fast-suite pytest run in the copy."""
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", *FAST, *paths], cwd=copy, env=copy_env(copy),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, f"timeout after {timeout:.0f} s"
    output = proc.stdout + proc.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    summary = (output.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode == 0:
        return True, summary
    return False, failed[0] if failed else f"exit {proc.returncode}: {summary}"


def run_suite(copy: Path, tests: list[str], killers: tuple[str, ...], timeout: float) -> tuple[bool, str, float]:
    """(passed, first failure or summary, seconds): the likely killers first, in their own run (pytest merges
    paths under one folder into that folder's order), then, if they pass, the whole of `tests`."""
    start = time.perf_counter()
    first = [k for k in killers if tests == ["tests"] or k in tests]
    if first:
        passed, detail = pytest(copy, first, timeout)
        if not passed:
            return False, detail, time.perf_counter() - start
    passed, detail = pytest(copy, tests, timeout)
    return passed, detail, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only mutants whose name contains TEXT (repeatable)")
    parser.add_argument("--tests", nargs="+", default=["tests"], metavar="PATH",
                        help="test paths to run instead of the whole fast suite (quick iteration)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per suite run (default 900)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or any(t in m.name for t in args.only)]
    if args.list or not mutants:
        for m in mutants:
            print(f"{m.name:36} {m.file:22} {m.description}")
        return 0 if mutants else 2
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        base = Path(tmp) / "base"
        copy_tree(base)
        for m in mutants:  # every mutant applies to the code as it is now (fails loudly otherwise)
            mutated(base, m)
        check_imports(base)
        print(f"copy of {ROOT} in {base}: imports checked", flush=True)
        if not args.no_baseline:
            passed, summary, seconds = run_suite(base, args.tests, (), args.timeout)
            print(f"baseline (no mutant): {'passed' if passed else 'FAILED'} in {seconds:.0f} s: {summary}",
                  flush=True)
            if not passed:
                print("error: the unmutated suite fails; mutants would be 'killed' by that failure")
                return 2
        survived = []
        for m in mutants:
            copy = Path(tmp) / m.name
            shutil.copytree(base, copy)
            (copy / m.file).write_text(mutated(copy, m))
            passed, detail, seconds = run_suite(copy, args.tests, m.killers, args.timeout)
            verdict = "SURVIVED" if passed else "killed"
            print(f"{verdict:8} {m.name:36} {seconds:5.0f} s  {detail}", flush=True)
            if passed:
                survived.append(m.name)
            shutil.rmtree(copy)
        print(f"\n{len(mutants) - len(survived)} killed, {len(survived)} survived of {len(mutants)} mutants"
              + (f" (tests: {' '.join(args.tests)})" if args.tests != ["tests"] else " (the fast suite)"))
        if survived:
            print("survivors: " + ", ".join(survived))
        return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
