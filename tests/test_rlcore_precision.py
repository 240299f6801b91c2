"""bf16 mixed precision and the speed options (precision, cuda_graphs) of TD3/SAC: what stays fp32, how close a
bf16 update is to the fp32 one, what a bf16 run exports, and how bad input is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC, TD3

import train
from rlcore import precision
from rlcore.algos import build_algorithm
from rlcore.buffers import Batch
from rlcore.checkpoint import checkpoint_config, load_checkpoint, restore_algorithm, save_checkpoint
from rlcore.cliutil import run_cli
from rlcore.config import NetConfig, SACConfig, TD3Config
from rlcore.export import export_sb3_zip
from rlcore.networks import SACActor, TD3Actor, TwinCritic

OBS, ACT = 17, 6
LOW, HIGH = -np.ones(ACT, np.float32), np.ones(ACT, np.float32)
NET = NetConfig(net_arch=(64, 64))
CONFIGS = {"td3": TD3Config(net=NET, policy_delay=1), "sac": SACConfig(net=NET)}
needs_bf16 = pytest.mark.skipif(not precision.bf16_supported(torch.device("cpu")), reason="CPU without native bf16")


def _batch(n: int = 256) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(torch.randn(n, OBS, generator=g), torch.rand(n, ACT, generator=g) * 2 - 1, torch.randn(n, generator=g),
                 torch.randn(n, OBS, generator=g), (torch.rand(n, generator=g) < 0.1).float(), torch.zeros(n))


def _learner(algo: str, prec: str, **changes):
    torch.manual_seed(0)
    return build_algorithm(algo, OBS, LOW, HIGH, dataclasses.replace(CONFIGS[algo], precision=prec, **changes))


def _tensors(tree) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu", "leaky_relu", "silu"])
def test_fp32_training_pass_is_the_modules_own_arithmetic(activation: str) -> None:
    """dtype fp32 (the default) runs exactly the Sequential's ops, so fp32 runs are bitwise those before bf16."""
    net = NetConfig(net_arch=(8, 8), activation=activation)
    obs, actions = torch.randn(5, OBS), torch.rand(5, ACT) * 2 - 1
    td3, sac, critic = TD3Actor(OBS, ACT, net), SACActor(OBS, ACT, net), TwinCritic(OBS, ACT, net)
    assert torch.equal(td3(obs), td3.mu(obs))
    latent = sac.latent_pi(obs)
    mean, log_std = sac(obs)
    assert torch.equal(mean, sac.mu(latent)) and torch.equal(log_std, sac.log_std(latent).clamp(-20.0, 2.0))
    x = torch.cat([obs, actions], -1)
    q1, q2 = critic(obs, actions)
    assert torch.equal(q1, critic.qf0(x).squeeze(-1)) and torch.equal(q2, critic.qf1(x).squeeze(-1))
    assert torch.equal(critic.q1(obs, actions), q1)


@needs_bf16
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bf16_training_keeps_fp32_weights_optimiser_state_and_outputs(algo: str) -> None:
    learner = _learner(algo, "bf16")
    batch = _batch()
    for _ in range(3):
        out = learner.update(batch)
    assert all(v.dtype == torch.float32 for v in out.values())
    modules = [learner.actor, learner.critic, learner.critic_target] + ([learner.actor_target] if algo == "td3" else [])
    assert all(p.dtype == torch.float32 for m in modules for p in m.parameters())
    assert all(p.grad is None or p.grad.dtype == torch.float32 for m in modules for p in m.parameters())
    for optimizer in learner.optimizers():
        moments = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
        assert moments and all(v.dtype == torch.float32 for v in moments)
    state = learner.state_dict()
    floats = [t for t in _tensors(state) if t.is_floating_point()]
    assert floats and all(t.dtype in (torch.float32, torch.float64) for t in floats)  # normaliser sums: float64
    assert learner.policy.predict(np.zeros((2, OBS), np.float32)).dtype == np.float32


@needs_bf16
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_one_bf16_update_is_close_to_the_fp32_update(algo: str) -> None:
    """Same weights, batch and noise: losses within 1% (measured <= 0.4%), the parameter step points the same way
    (cosine >= 0.95, measured 0.985; Adam's first step is ~lr * sign(grad), so the bf16 gradient flips the sign
    of a few near-zero entries) and agrees in sign on >= 97% of the entries (measured 99.2%)."""
    steps, losses = {}, {}
    for prec in ("fp32", "bf16"):
        learner = _learner(algo, prec)
        params = list(learner.critic.parameters()) + list(learner.actor.parameters())
        before = [p.detach().clone() for p in params]
        torch.manual_seed(1)
        losses[prec] = learner.update(_batch())
        steps[prec] = torch.cat([(p.detach() - b).flatten() for p, b in zip(params, before, strict=True)])
    for key, value in losses["fp32"].items():
        torch.testing.assert_close(losses["bf16"][key], value, rtol=1e-2, atol=1e-3)
    assert torch.nn.functional.cosine_similarity(steps["bf16"], steps["fp32"], dim=0) >= 0.95
    assert (steps["bf16"].sign() == steps["fp32"].sign()).float().mean() >= 0.97


@needs_bf16
@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_bf16_checkpoint_is_fp32_and_exports_a_zip_sb3_loads_and_acts_like_our_policy(algo: str, tmp_path) -> None:
    learner = _learner(algo, "bf16")
    for _ in range(3):
        learner.update(_batch())
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, algo_name=algo, config=learner.cfg, algo_state=learner.state_dict(), obs_shape=(OBS,),
                    action_low=LOW, action_high=HIGH, runner_state={"timesteps": 3})
    payload = load_checkpoint(path)
    assert payload["config"]["precision"] == "bf16"  # the record of how the run trained
    assert checkpoint_config(payload).precision == "fp32"  # what loading it builds: plain fp32, any device
    restored = restore_algorithm(payload)
    obs = np.random.default_rng(0).normal(size=(200, OBS)).astype(np.float32)
    np.testing.assert_array_equal(restored.policy.predict(obs), learner.policy.predict(obs))
    zip_path = tmp_path / "m.zip"
    export_sb3_zip(restored, zip_path, obs_low=np.full(OBS, -np.inf), obs_high=np.full(OBS, np.inf),
                   action_low=LOW, action_high=HIGH)
    model = {"td3": TD3, "sac": SAC}[algo].load(zip_path, device="cpu")
    assert all(p.dtype == torch.float32 for p in model.policy.parameters())
    theirs, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(theirs, learner.policy.predict(obs), atol=1e-6)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_speed_options_are_checked_against_the_device(algo: str, monkeypatch) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        dataclasses.replace(CONFIGS[algo], precision="fp16")
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        _learner(algo, "fp32", cuda_graphs=True)
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    with pytest.raises(ValueError, match="needs native bf16"):
        _learner(algo, "bf16")


GENERIC = ["--env-id", "Pendulum-v1", "--total-timesteps", "50", "--eval-episodes", "1"]
OFF_POLICY = ["--learning-starts", "10", "--batch-size", "8"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--algo", "ppo", "--cuda-graphs"], "--cuda-graphs applies to TD3 and SAC, not PPO"),
    (["--algo", "ppo", "--precision", "bf16"], "--precision applies to TD3 and SAC, not PPO"),
    (["--algo", "sac", *OFF_POLICY, "--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA device"),
    (["--algo", "td3", *OFF_POLICY, "--precision", "fp16"], "invalid choice: 'fp16'"),
    (["--algo", "td3", *OFF_POLICY, "--gradient-steps", "0"], "gradient_steps must be > 0"),
    (["--algo", "td3", *OFF_POLICY, "--threads", "-1"], "--threads must be >= 0"),
])
def test_bad_speed_flags_are_one_error_line(extra: list[str], message: str, tmp_path, capsys) -> None:
    assert run_cli(train.main, [*GENERIC, *extra, "--save-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "r").exists()


def test_bf16_on_a_device_without_it_is_one_error_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    argv = [*GENERIC, *OFF_POLICY, "--algo", "sac", "--precision", "bf16", "--device", "cpu", "--save-dir",
            str(tmp_path / "r")]
    assert run_cli(train.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --precision bf16 on cpu:") and err.count("\n") == 1, err


@needs_bf16
def test_bf16_run_through_train_then_resume_takes_precision_from_the_flag(tmp_path, capsys) -> None:
    run = tmp_path / "r"
    argv = [*GENERIC, *OFF_POLICY, "--algo", "td3", "--precision", "bf16", "--gradient-steps", "2", "--net-arch",
            "16", "--save-dir", str(run)]
    assert run_cli(train.main, argv) == 0
    payload = load_checkpoint(run / "checkpoint.pt")
    assert payload["config"]["precision"] == "bf16" and payload["config"]["gradient_steps"] == 2
    assert payload["algo_state"]["n_updates"] == 2 * (50 - 10 + 1)  # two gradient steps per vector step
    resumed = [*GENERIC[:2], "--total-timesteps", "60", "--algo", "td3", "--resume-model", str(run / "checkpoint.pt"),
               "--eval-episodes", "1", "--save-dir", str(run)]  # no --precision: fp32
    assert run_cli(train.main, resumed) == 0
    assert load_checkpoint(run / "checkpoint.pt")["config"]["precision"] == "fp32"
