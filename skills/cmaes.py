"""The CMA-ES loop the skill tuners share (skills/tune_walk.py, skills/tune_kick.py), on pycma.

`search` runs generations of ask -> evaluate the population in worker processes -> tell, prints one line per
generation (best, best ever, mean, step size, evaluations per second, wall time), writes the best result
after every improvement and the search state (mean, step size, covariance, best) after every generation,
both as JSON through a temporary file renamed into place. `load_state` reads such a state back: a resumed
search restarts from its mean, step size and covariance (pycma's evolution paths restart).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


class UsageError(ValueError):
    """Bad user input of a tuner: one `error:` line and exit code 2."""


def write_json(path: Path, document: dict) -> None:
    """Write JSON through a temporary file renamed into place (nothing half-written on a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class SearchState:
    """Where a search stands (what `--resume` continues from)."""

    generation: int
    mean: np.ndarray
    sigma: float
    covariance: np.ndarray
    best: np.ndarray
    best_cost: float
    extra: dict
    """The tuner's own fields (its parameter names, its start parameters)."""


@dataclass
class TunerRun:
    """A tuner's files and provenance: where the best result and the state go, the state it resumes (None for a
    fresh search), the command line and options its result records."""

    out: Path
    state_path: Path
    resumed: SearchState | None
    command_line: str
    options: dict

    def start(self, params_cls: type, fresh: Any) -> Any:
        """The search's start parameters: `fresh`, or those of the resumed state (UsageError if they do not fit
        `params_cls`)."""
        if self.resumed is None:
            return fresh
        try:
            return params_cls(**self.resumed.extra["start"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"--resume: the state's start parameters do not fit ({exc.__class__.__name__})") from None


def tuner_run(args: Any, names: Sequence[str], module: str, argv: Sequence[str] | None) -> TunerRun:
    """The TunerRun of parsed tuner flags (`--out`, `--state`, `--resume`) for the tool `python -m module`."""
    out = Path(args.out)
    state_path = Path(args.state) if args.state else out.with_name("state.json")
    resumed = load_state(args.resume, list(names)) if args.resume else None
    command_line = f"python -m {module} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    return TunerRun(out, state_path, resumed, command_line, dict(vars(args)))


def load_state(path: str, names: Sequence[str]) -> SearchState:
    """A state file of `search` for parameters `names`; UsageError (one line) for anything else."""
    try:
        doc = json.loads(Path(path).read_text())
        state = SearchState(int(doc["generation"]), np.asarray(doc["mean"], np.float64), float(doc["sigma"]),
                            np.asarray(doc["covariance"], np.float64), np.asarray(doc["best"], np.float64),
                            float(doc["best_cost"]), dict(doc.get("extra", {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {path}: not a tuner state file ({exc.__class__.__name__})") from None
    dim = len(names)
    ok = (state.mean.shape == (dim,) and state.covariance.shape == (dim, dim) and state.best.shape == (dim,)
          and np.isfinite(state.mean).all() and np.isfinite(state.covariance).all() and math.isfinite(state.sigma)
          and state.sigma > 0 and list(state.extra.get("names", [])) == list(names))
    if not ok:
        raise UsageError(f"--resume {path}: the state does not match this tuner's parameters")
    return state


def local_pool(workers: int, init_worker: Callable[..., None], init_args: tuple):
    """`workers` local processes, each set up by `init_worker(*init_args)` (a context manager with `map`)."""
    return mp.get_context("spawn").Pool(workers, initializer=init_worker, initargs=init_args)


def search(*, names: Sequence[str], evaluate: Callable[[np.ndarray], tuple[float, Any]], generations: int,
           popsize: int, sigma: float, seed: int, workers: int, init_worker: Callable[..., None],
           init_args: tuple, out: Path, state_path: Path, resume: SearchState | None,
           result_doc: Callable[[np.ndarray, float, Any, int], dict], extra: dict, unit: str = "evaluations",
           pool: Callable[[int, Callable[..., None], tuple], Any] = local_pool) -> float:
    """Run the search (module docstring); `evaluate(z)` runs in a worker of `pool(workers, init_worker,
    init_args)` (local processes, or Ray actors: sweep/pool.py) and returns (cost, details),
    `result_doc(z, cost, details, generation)` is the JSON written to `out` on improvement. Returns the best cost."""
    import cma

    dim = len(names)
    x0 = resume.mean if resume else np.zeros(dim)
    es = cma.CMAEvolutionStrategy(x0, resume.sigma if resume else sigma,
                                  {"popsize": popsize, "seed": seed + 1, "verbose": -9})
    if resume is not None:
        es.sm.C = resume.covariance
        es.sm.update_now(-1)
    generation0 = resume.generation if resume else 0
    best_cost = resume.best_cost if resume else math.inf
    best_z = resume.best if resume else x0
    started = time.perf_counter()
    with pool(workers, init_worker, init_args) as workers_pool:
        for generation in range(generation0 + 1, generation0 + generations + 1):
            tick = time.perf_counter()
            zs = es.ask()
            outcomes = workers_pool.map(evaluate, [np.asarray(z) for z in zs])
            costs = [cost for cost, _ in outcomes]
            es.tell(zs, costs)
            i = int(np.argmin(costs))
            if costs[i] < best_cost:
                best_cost, best_z = costs[i], np.asarray(zs[i])
                write_json(out, result_doc(best_z, best_cost, outcomes[i][1], generation))
            write_json(state_path, {"generation": generation, "mean": es.mean.tolist(), "sigma": float(es.sigma),
                                    "covariance": np.asarray(es.sm.C).tolist(), "best": best_z.tolist(),
                                    "best_cost": best_cost, "extra": {**extra, "names": list(names)}})
            rate = len(zs) / (time.perf_counter() - tick)
            print(f"gen {generation:4d}  best {costs[i]:8.3f} (ever {best_cost:8.3f})  mean {np.mean(costs):8.3f}  "
                  f"sigma {es.sigma:.3f}  {rate:5.1f} {unit}/s  [{time.perf_counter() - started:6.0f} s]", flush=True)
    return best_cost
