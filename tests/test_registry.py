"""rlcore/registry.py is the one home of per-algorithm facts, and TD3, SAC and PPO satisfy one interface
(rlcore/algos/protocol.py) in the same way."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from rlcore.algos.protocol import Algorithm, FineTuning, Learner, OnPolicy
from rlcore.buffers import RolloutBuffer
from rlcore.config import NetConfig
from rlcore.export import sb3_policy_state
from rlcore.registry import ALGORITHM_SPECS, algorithm_spec

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlcore", "bc", "submission", "envs", "scoring", "skills", "workflow", "sweep")
CLIS = ("train.py", "evaluate.py")
DATA = {"RECIPES"}
"""Assignments whose algorithm names are data, not switches: a recipe names the algorithm it was measured with."""
OBS, ACT = 5, 2
SMALL = NetConfig(net_arch=(8, 8))


def _name_literals(path: Path) -> list[str]:
    """`file:line` of every string constant that is an algorithm's name, except an algorithm class's own
    `name = ...` line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    own = {id(node.value) for node in ast.walk(tree)
           if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["name"]
           and path.parent == ROOT / "rlcore" / "algos"}
    own |= {id(constant) for node in ast.walk(tree) if isinstance(node, ast.Assign)
            and {getattr(t, "id", None) for t in node.targets} & DATA for constant in ast.walk(node.value)}
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in ALGORITHM_SPECS and id(node) not in own]


def test_algorithm_names_appear_only_in_the_registry() -> None:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))
             if p != ROOT / "rlcore" / "registry.py"] + [ROOT / name for name in CLIS]
    assert len(files) > 60
    assert [hit for path in files for hit in _name_literals(path)] == []


def _build(name: str) -> Algorithm:
    spec = algorithm_spec(name)
    cfg = spec.config(net=SMALL)
    return spec.build(OBS, -np.ones(ACT, np.float32), np.ones(ACT, np.float32), cfg)


@pytest.mark.parametrize("name", sorted(ALGORITHM_SPECS))
def test_every_spec_builds_an_algorithm_of_the_protocol(name: str) -> None:
    spec = algorithm_spec(name)
    algo = _build(name)
    assert isinstance(algo, Learner) and isinstance(algo, FineTuning) and isinstance(algo, Algorithm)
    assert isinstance(algo, OnPolicy) == spec.on_policy
    assert (algo.name, algo.on_policy) == (spec.name, spec.on_policy)
    assert type(algo) is spec.algorithm and isinstance(algo.cfg, spec.config)
    assert type(algo.actor) is spec.actor_network and algo.policy.actor is algo.actor
    assert hasattr(algo, "actor_target") == spec.has_actor_target
    assert (spec.set_std is None) == (not hasattr(algo.actor, "sample"))  # a stochastic actor has a std to set
    for path in spec.bc_modules:
        algo.actor.get_submodule(path)
    obs = torch.randn(3, OBS)
    assert algo.explore(obs).shape == (3, ACT)
    assert spec.bc_output(algo.actor, obs).shape == (3, ACT)
    state = sb3_policy_state(algo, -np.ones(ACT), np.ones(ACT))
    assert set(spec.sb3.required_keys) <= set(state)
    assert any(k.startswith(spec.sb3.actor_trunk) for k in state)


def test_a_config_of_another_algorithm_is_refused() -> None:
    td3, sac = algorithm_spec("td3"), algorithm_spec("sac")
    with pytest.raises(ValueError, match="needs a TD3Config, got SACConfig"):
        td3.build(OBS, -np.ones(ACT), np.ones(ACT), sac.config())
    with pytest.raises(ValueError, match="unknown algorithm 'a2c'; known: ppo, sac, td3"):
        algorithm_spec("a2c")


def _positional_arity(cls: type, method: str) -> int:
    params = list(inspect.signature(getattr(cls, method)).parameters.values())[1:]  # without self
    return sum(p.default is inspect.Parameter.empty for p in params)


@pytest.mark.parametrize("protocol", [Learner, FineTuning])
def test_the_algorithms_expose_the_interface_the_same_way(protocol: type) -> None:
    methods = [m for m in protocol.__dict__ if callable(getattr(protocol, m)) and not m.startswith("_")]
    assert 0 < len(methods) <= 5  # interfaces stay small
    for method in methods:
        arities = {spec.name: _positional_arity(spec.algorithm, method) for spec in ALGORITHM_SPECS.values()}
        assert set(arities.values()) == {_positional_arity(protocol, method)}, (method, arities)


def test_on_policy_update_takes_the_finished_rollout() -> None:
    """PPO's update, like the others', takes one argument: the rollout carries its bootstrap observation."""
    ppo = _build("ppo")
    rollout = RolloutBuffer(ppo.cfg.n_steps, 1, OBS, ACT, seed=0)
    while not rollout.full:
        obs = torch.randn(1, OBS)
        rollout.add(ppo.normalizer(obs), ppo.explore(obs), torch.randn(1), torch.zeros(1))
    rollout.finish(torch.randn(1, OBS))
    with torch.no_grad():
        last_value = ppo.actor.value(rollout.last_obs)  # before the update changes the value function
    out = ppo.update(rollout)
    assert all(v.ndim == 0 for v in out.values())
    expected = rollout.rewards[-1] + ppo.cfg.gamma * last_value - rollout.values[-1]  # the last step's GAE
    torch.testing.assert_close(rollout.advantages[-1], expected)
