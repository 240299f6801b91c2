"""CUDA graphs for the off-policy update (config `cuda_graphs`, off by default): capture once, replay per update.

An update of small networks on a GPU is bound by kernel launches (a SAC update is a few hundred small
kernels), not by arithmetic; a CUDA graph replays all of them with one launch (LeanRL's lever). The
algorithm splits its update into Python-side decisions (delayed step or not, actor started or not) and a
tensor-only step `step(batch, *flags) -> metrics`; one graph is captured per variant `key`, which names
everything that changes the captured ops (the flags, an anchor, the actor's trainable mask).

What a captured step needs, and the algorithms provide: capturable Adam (step counts on the device), state
read by the graph changed in place (SAC's alpha), no host syncs, and the random draws from the default CUDA
generator (graph-safe: a replay continues its offsets). The replay buffer samples outside the graph (its
size changes every step); each call copies the batch into the graph's static inputs.

The first WARMUP calls of a variant run eagerly on a side stream, as PyTorch's capture recipe asks (they
create the optimiser state and the library workspaces); they are real updates, so warm-up costs no
training. The next call captures the variant, then replays it: from then on every call of that variant is
a copy of the batch plus one replay. Each variant gets its own memory pool (its gradients live there).
`reset()` drops the graphs; the algorithm calls it when the captured tensors are replaced (an optimiser
state loaded, an anchor set).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Hashable

import torch

from rlcore.buffers import Batch

WARMUP = 3
"""Eager calls of each variant before it is captured."""


class GraphedStep:
    """`step(batch, *flags)` run through one CUDA graph per variant key (module docstring)."""

    def __init__(self, step: Callable[..., dict[str, torch.Tensor]], device: torch.device) -> None:
        if device.type != "cuda":
            raise ValueError(f"cuda_graphs needs a CUDA device, got {device}")
        self.step = step
        self.device = device
        self._graphs: dict[Hashable, tuple[Batch, torch.cuda.CUDAGraph, dict[str, torch.Tensor]]] = {}
        self._eager_calls: collections.Counter[Hashable] = collections.Counter()

    def __call__(self, batch: Batch, key: Hashable, *flags: bool) -> dict[str, torch.Tensor]:
        key = (key, batch.demo is None)
        entry = self._graphs.get(key)
        if entry is None:
            if self._eager_calls[key] < WARMUP:
                self._eager_calls[key] += 1
                return self._eager(batch, flags)
            entry = self._capture(batch, key, flags)
        else:
            static, _, _ = entry
            for name, value in _tensors(batch).items():
                getattr(static, name).copy_(value)
        _, graph, out = entry
        graph.replay()
        return {name: value.clone() for name, value in out.items()}  # the next replay overwrites `out`

    def reset(self) -> None:
        """Forget every captured variant (each is warmed up and captured again on its next calls)."""
        self._graphs.clear()
        self._eager_calls.clear()

    def _eager(self, batch: Batch, flags: tuple[bool, ...]) -> dict[str, torch.Tensor]:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            out = self.step(batch, *flags)
        torch.cuda.current_stream(self.device).wait_stream(side)
        return out

    def _capture(self, batch: Batch, key: Hashable, flags: tuple[bool, ...]):
        static = dataclasses.replace(batch, **{name: value.clone() for name, value in _tensors(batch).items()})
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.step(static, *flags)
        entry = (static, graph, out)
        self._graphs[key] = entry
        return entry


def _tensors(batch: Batch) -> dict[str, torch.Tensor]:
    return {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch) if getattr(batch, f.name) is not None}
