"""Hostile input against every CLI: files from strangers (checkpoints, BC payloads, SB3 zips, VecNormalize
pickles, meta documents, datasets, YAML configs), bad output paths, full disks, signals, contradicting and
out-of-range flags. The promise each test holds: no code from a file ever runs (a malicious pickle would create a
marker file; it must not exist), the answer is ONE `error:` line with exit code 2, and nothing is half-written
or clobbered.

One test per case; the module docstring of each section names the issue item it covers (issue 13).
"""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import pickle
import shlex
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import evaluate
import train
import workflow.builders
from bc import record as bc_record
from bc import train as bc_train
from bc.cloning import BCConfig, make_payload, save_bc, train_bc
from bc.dataset import load_demos, save_npz
from bc.mocap import MocapError, load_mocap
from rlcore import convert_checkpoint
from rlcore.algos import build_algorithm
from rlcore.checkpoint import load_checkpoint, save_checkpoint
from rlcore.cliutil import run_cli
from rlcore.config import NetConfig, TD3Config
from rlcore.export import read_sb3_zip
from rlcore.fileio import SaveDirLock
from rlcore.normstats import read_normalizer_stats
from submission import __main__ as export_cli

ROOT = Path(__file__).resolve().parent.parent
PENDULUM = ["--env-id", "Pendulum-v1"]
SHORT_SOCCER = ["--tasks", "kick_to_target", "--eval-seeds", "0", "--episodes", "1", "--max-episode-steps", "5"]
"""evaluate.py on soccer, kept short (a regression that accepted a bad file must not run for minutes)."""
SHORT_RECORD = ["--tasks", "kick_to_target", "--seeds", "0", "--max-episode-steps", "5"]
TINY_RUN = [*PENDULUM, "--algo", "td3", "--learning-starts", "50", "--net-arch", "8", "--batch-size", "32",
            "--buffer-size", "5000", "--eval-episodes", "1", "--log-interval", "1000"]


def tiny(total: int = 120) -> list[str]:
    """A tiny Pendulum TD3 run of `total` timesteps (add --save-dir)."""
    return [*TINY_RUN, "--total-timesteps", str(total)]


def one_error_line(capsys) -> str:
    """The stderr of a refused command: exactly one line, starting with `error:`."""
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err
    return err


class RunsCode:
    """A pickled object whose unpickling runs a shell command creating `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def dotted_eval_pickle(module: str, marker: Path) -> bytes:
    """Protocol 4: STACK_GLOBAL (module, '__builtins__.eval') called on code that creates `marker`. Python's own
    find_class walks the dotted name from the module to builtins.eval."""
    def text(value: str) -> bytes:
        raw = value.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    code_raw = code.encode()
    return (b"\x80\x04" + text(module) + text("__builtins__.eval") + b"\x93"
            + b"X" + struct.pack("<I", len(code_raw)) + code_raw + b"\x85R.")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny Pendulum TD3 run (checkpoint with its replay, final_model.zip + meta.json)."""
    out = tmp_path_factory.mktemp("run") / "p"
    assert run_cli(train.main, [*tiny(), "--save-replay", "--save-dir", str(out)]) == 0
    return out


@pytest.fixture
def payload(run_dir) -> dict:
    """The good checkpoint's payload, to be spoiled."""
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)


def save_payload(path: Path, payload) -> Path:
    torch.save(payload, path)
    return path


def rewrite_zip(src: Path, dst: Path, *, data: dict | None = None, members: dict[str, bytes] | None = None,
                compress: int = zipfile.ZIP_STORED) -> Path:
    """A copy of the zip `src` with `data` entries replaced and whole members replaced or added."""
    with zipfile.ZipFile(src) as archive:
        contents = {n: archive.read(n) for n in archive.namelist()}
    document = json.loads(contents["data"])
    document.update(data or {})
    contents["data"] = json.dumps(document).encode()
    contents.update(members or {})
    with zipfile.ZipFile(dst, "w", compression=compress) as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)
    return dst


def pickled_entry(raw: bytes) -> dict:
    return {":type:": "x", ":serialized:": base64.b64encode(raw).decode()}


def tiny_dataset(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"observations": rng.normal(size=(20, 89)).astype(np.float32),
              "actions": rng.uniform(-1, 1, size=(20, 12)).astype(np.float32),
              "action_mode": np.array("torque")}
    arrays.update(overrides)
    save_npz(path, arrays)
    return path


def bc_file(path: Path, **changes) -> Path:
    """A BC payload of a tiny TD3 actor on the 89-dim observation, with `changes` applied."""
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(16, 89)).astype(np.float32), rng.uniform(-1, 1, (16, 12)).astype(np.float32)
    cfg = BCConfig(algo="td3", net_arch=(8,), epochs=1, batch_size=8, normalize_obs=True)
    result = train_bc(obs, actions, cfg, log=None)
    document = make_payload(result, cfg, action_mode="torque")
    document.update(changes)
    save_bc(path, document)
    return path


# ------------------------------------------------------------------------------------------------------
# 1. Checkpoints load weights-only: a malicious pickle in a .pt runs nothing, through every CLI that reads one.

def test_evaluate_malicious_checkpoint_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "checkpoint.pt", {"format": 2, "algo_state": RunsCode(marker)})
    assert run_cli(evaluate.main, ["--model", str(evil), *PENDULUM]) == 2
    assert "refused without loading" in one_error_line(capsys)
    assert not marker.exists()


def test_train_resume_malicious_checkpoint_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "checkpoint.pt", {"format": 2, "algo_state": RunsCode(marker)})
    assert run_cli(train.main, [*tiny(), "--resume-model", str(evil), "--save-dir", str(tmp_path / "x")]) == 2
    one_error_line(capsys)
    assert not marker.exists() and not (tmp_path / "x").exists()


def test_submission_malicious_checkpoint_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "checkpoint.pt", {"format": 2, "algo_state": RunsCode(marker)})
    assert run_cli(export_cli.main, [str(evil)]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_bc_record_malicious_policy_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "policy.pt", {"format": "bc_actor", "state_dict": RunsCode(marker)})
    assert run_cli(bc_record.main, ["--policy", str(evil), "--out", str(tmp_path / "d.npz"), *SHORT_RECORD]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_train_malicious_bc_weights_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "bc.pt", {"format": "bc_actor", "state_dict": RunsCode(marker)})
    assert run_cli(train.main, [*tiny(), "--bc-weights", str(evil), "--save-dir", str(tmp_path / "x")]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_checkpoints_are_weights_only_files(run_dir) -> None:
    payload = torch.load(run_dir / "checkpoint.pt", weights_only=True)  # raises if anything but plain data is in it
    assert payload["format"] == 2 and isinstance(payload["rng"]["numpy"]["key"], torch.Tensor)


def _format1(payload: dict, path: Path, numpy_state: tuple | None = None) -> Path:
    """What the previous code wrote: format 1, numpy's RNG state and numpy numbers pickled as numpy objects."""
    old = {**payload, "format": 1, "rng": {**payload["rng"], "numpy": numpy_state or np.random.get_state()},
           "runner": {**payload["runner"], "last_eval": {"eval/mean_reward": np.float64(-3.5)}}}
    return save_payload(path, old)


def test_old_format_checkpoint_names_the_converter(payload, tmp_path, capsys) -> None:
    old = _format1(payload, tmp_path / "old.pt")
    assert run_cli(train.main, [*tiny(), "--resume-model", str(old), "--save-dir", str(tmp_path / "x")]) == 2
    assert "format-1 checkpoint" in (err := one_error_line(capsys)) and "python -m rlcore.convert_checkpoint" in err
    assert run_cli(evaluate.main, ["--model", str(old), *PENDULUM]) == 2
    assert "python -m rlcore.convert_checkpoint" in one_error_line(capsys)


def test_converter_turns_an_old_checkpoint_into_a_loadable_one(payload, tmp_path, capsys) -> None:
    numpy_state = np.random.RandomState(7).get_state()
    old, new = _format1(payload, tmp_path / "old.pt", numpy_state), tmp_path / "new.pt"
    assert run_cli(convert_checkpoint.main, [str(old), str(new)]) == 0
    converted = load_checkpoint(new)
    assert converted["runner"]["last_eval"] == {"eval/mean_reward": -3.5}
    np.testing.assert_array_equal(converted["rng"]["numpy"]["key"].numpy(), numpy_state[1])
    assert converted["rng"]["numpy"]["pos"] == numpy_state[2]
    assert run_cli(evaluate.main, ["--model", str(new), *PENDULUM, "--episodes", "1"]) == 0


def test_converter_refuses_a_malicious_file(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = save_payload(tmp_path / "old.pt", {"format": 1, "rng": RunsCode(marker)})
    assert run_cli(convert_checkpoint.main, [str(evil), str(tmp_path / "new.pt")]) == 2
    one_error_line(capsys)
    assert not marker.exists() and not (tmp_path / "new.pt").exists()


def test_converter_refuses_an_object_array(payload, tmp_path, capsys) -> None:
    old = {**payload, "format": 1, "rng": {**payload["rng"], "numpy": np.array([None, 1], dtype=object)}}
    path = save_payload(tmp_path / "old.pt", old)
    assert run_cli(convert_checkpoint.main, [str(path), str(tmp_path / "new.pt")]) == 2
    one_error_line(capsys)


# ------------------------------------------------------------------------------------------------------
# 2. One restricted unpickler for SB3 zips and VecNormalize files: exact names, no dotted names, bounded.

def test_vecnormalize_dotted_name_reaching_eval_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "vecnormalize.pkl"
    evil.write_bytes(dotted_eval_pickle("numpy.random.bit_generator", marker))
    assert run_cli(train.main, [*tiny(), "--normalize-obs", "--vecnormalize-path", str(evil),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "dotted name" in one_error_line(capsys)
    assert not marker.exists()


def test_vecnormalize_global_call_runs_no_code(tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "vecnormalize.pkl"
    evil.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(ValueError, match="refusing posix.system"):
        read_normalizer_stats(evil)
    assert not marker.exists()


def test_zip_data_global_call_runs_no_code(run_dir, tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip",
                       data={"observation_space": pickled_entry(pickle.dumps(RunsCode(marker)))})
    assert run_cli(evaluate.main, ["--model", str(evil), *PENDULUM]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_zip_data_dotted_name_runs_no_code(run_dir, tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    raw = dotted_eval_pickle("numpy.random.bit_generator", marker)
    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip", data={"action_space": pickled_entry(raw)})
    assert run_cli(evaluate.main, ["--model", str(evil), *PENDULUM]) == 2
    assert "dotted name" in one_error_line(capsys)
    assert not marker.exists()


def test_zip_pth_member_pickle_runs_no_code(run_dir, tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"actor.mu.0.weight": RunsCode(marker)}, buffer)
    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip", members={"policy.pth": buffer.getvalue()})
    assert run_cli(train.main, [*tiny(), "--resume-model", str(evil), "--save-dir", str(tmp_path / "x")]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def test_vecnormalize_larger_than_the_bound_is_refused(tmp_path) -> None:
    big = tmp_path / "vecnormalize.pkl"
    big.write_bytes(pickle.dumps(b"x" * (17 * 2**20)))
    with pytest.raises(ValueError, match="larger than"):
        read_normalizer_stats(big)


def test_vecnormalize_corrupted_frame_length_is_one_line(tmp_path, capsys) -> None:
    raw = bytearray(pickle.dumps({"obs_rms": [1.0] * 10}, protocol=4))
    frame = raw.index(b"\x95")
    raw[frame + 1:frame + 9] = struct.pack("<Q", 2**62)
    path = tmp_path / "vecnormalize.pkl"
    path.write_bytes(bytes(raw))
    assert run_cli(train.main, [*tiny(), "--normalize-obs", "--vecnormalize-path", str(path),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "not a readable SB3 VecNormalize file" in one_error_line(capsys)


def test_zip_array_of_shared_lists_is_refused_before_allocating(run_dir, tmp_path) -> None:
    row = list(range(2000))
    bomb = [row] * 100_000  # 2e8 elements from a pickle of a few hundred kilobytes (shared references)

    class Call:
        def __reduce__(self):
            return np.array, (bomb, "float32")

    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip",
                       data={"observation_space": pickled_entry(pickle.dumps(Call(), protocol=4))})
    start = time.perf_counter()
    with pytest.raises(ValueError, match="elements allowed"):
        read_sb3_zip(evil)
    assert time.perf_counter() - start < 5


def test_zip_box_of_a_billion_dims_is_refused(run_dir, tmp_path) -> None:
    class HugeBox:
        def __reduce__(self):
            return gym.spaces.Box, (0.0, 1.0, (10**9,), "float32")

    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip",
                       data={"observation_space": pickled_entry(pickle.dumps(HugeBox(), protocol=4))})
    with pytest.raises(ValueError, match="elements"):
        read_sb3_zip(evil)


def test_zip_object_array_is_refused(run_dir, tmp_path) -> None:
    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "evil.zip",
                       data={"action_space": pickled_entry(pickle.dumps(np.array([None, 1], dtype=object)))})
    with pytest.raises(ValueError, match="not a bool, integer or float"):
        read_sb3_zip(evil)


# ------------------------------------------------------------------------------------------------------
# 3. Loaders check structure before use: one line naming the file and the problem.

def test_hollow_checkpoint_is_one_line(tmp_path, capsys) -> None:
    hollow = save_payload(tmp_path / "checkpoint.pt", {"format": 2, "algo_state": {}})
    assert run_cli(evaluate.main, ["--model", str(hollow), *PENDULUM]) == 2
    assert "malformed checkpoint: ValueError: missing" in one_error_line(capsys)


def test_foreign_algorithm_checkpoint_is_one_line(payload, tmp_path, capsys) -> None:
    path = save_payload(tmp_path / "checkpoint.pt", {**payload, "algo": "dqn"})
    assert run_cli(export_cli.main, [str(path), "--save-dir", str(tmp_path / "out")]) == 2
    assert "unknown algorithm 'dqn'" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_observation_width_on_soccer_is_one_line(run_dir, capsys) -> None:
    assert run_cli(evaluate.main, ["--model", str(run_dir / "checkpoint.pt"), *SHORT_SOCCER]) == 2
    assert "takes 3-dim observations" in one_error_line(capsys)


def test_checkpoint_weights_not_fitting_its_network_are_one_line(payload, tmp_path, capsys) -> None:
    payload["algo_state"]["actor"]["mu.0.weight"] = torch.zeros(8, 5)
    path = save_payload(tmp_path / "checkpoint.pt", payload)
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "does not fit the network" in one_error_line(capsys)


def test_checkpoint_asking_for_a_gigantic_network_allocates_nothing(payload, tmp_path, capsys) -> None:
    payload["config"]["net"]["net_arch"] = [10**6, 10**6]  # 4 TB of weights if it were built
    path = save_payload(tmp_path / "checkpoint.pt", payload)
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "does not fit the network" in one_error_line(capsys)


def test_checkpoint_with_nan_normaliser_is_refused(payload, tmp_path, capsys) -> None:
    payload["algo_state"]["normalizer"]["mean"] = torch.full((3,), float("nan"), dtype=torch.float64)
    path = save_payload(tmp_path / "checkpoint.pt", payload)
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "NaN" in one_error_line(capsys)


def test_checkpoint_adam_moments_of_the_wrong_shape_are_refused(payload, tmp_path, capsys) -> None:
    state = payload["algo_state"]["critic_optimizer"]["state"]
    state[0]["exp_avg"] = torch.zeros(3, 3)
    path = save_payload(tmp_path / "checkpoint.pt", payload)
    assert run_cli(train.main, [*tiny(200), "--resume-model", str(path),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "optimizer state" in one_error_line(capsys)


def test_checkpoint_with_bad_rng_state_is_refused(payload, tmp_path, capsys) -> None:
    payload["rng"]["numpy"]["key"] = torch.zeros(3, dtype=torch.int64)
    path = save_payload(tmp_path / "checkpoint.pt", payload)
    assert run_cli(train.main, [*tiny(200), "--resume-model", str(path),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "RNG" in one_error_line(capsys)


def test_hollow_bc_payload_is_one_line(tmp_path, capsys) -> None:
    hollow = save_payload(tmp_path / "bc.pt", {"format": "bc_actor", "version": 1})
    assert run_cli(evaluate.main, ["--model", str(hollow), *SHORT_SOCCER]) == 2
    assert "malformed BC payload" in one_error_line(capsys)
    assert run_cli(train.main, ["--bc-weights", str(hollow), "--total-timesteps", "20", "--max-episode-steps", "10",
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "malformed BC payload" in one_error_line(capsys)


def test_bc_payload_of_an_unknown_algorithm_is_one_line(tmp_path, capsys) -> None:
    path = bc_file(tmp_path / "bc.pt", algo="dqn")
    assert run_cli(bc_record.main, ["--policy", str(path), "--out", str(tmp_path / "d.npz"), *SHORT_RECORD]) == 2
    assert "unknown algorithm 'dqn'" in one_error_line(capsys)


def test_bc_payload_with_negative_variance_is_refused(tmp_path, capsys) -> None:
    path = bc_file(tmp_path / "bc.pt")
    document = torch.load(path, weights_only=True)
    document["normalizer"]["var"] = -torch.ones(89, dtype=torch.float64)
    save_payload(path, document)
    assert run_cli(evaluate.main, ["--model", str(path), *SHORT_SOCCER]) == 2
    assert "var must be >= 0" in one_error_line(capsys)


def test_bc_payload_weights_of_another_shape_are_one_line(tmp_path, capsys) -> None:
    path = bc_file(tmp_path / "bc.pt")
    document = torch.load(path, weights_only=True)
    document["state_dict"]["mu.0.weight"] = torch.zeros(8, 7)
    save_payload(path, document)
    assert run_cli(evaluate.main, ["--model", str(path), *SHORT_SOCCER]) == 2
    assert "malformed BC payload" in one_error_line(capsys)


def _meta_with(run_dir: Path, tmp_path: Path, normalizer) -> Path:
    """A copy of the run's zip whose meta document has `normalizer` as its statistics."""
    (tmp_path / "final_model.zip").write_bytes((run_dir / "final_model.zip").read_bytes())
    meta = json.loads((run_dir / "final_model.meta.json").read_text())
    meta["normalizer"] = normalizer
    (tmp_path / "final_model.meta.json").write_text(json.dumps(meta))
    return tmp_path / "final_model.zip"


def test_meta_normaliser_without_fields_is_one_line(run_dir, tmp_path, capsys) -> None:
    path = _meta_with(run_dir, tmp_path, {"enabled": True})
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "lack mean, var, count" in one_error_line(capsys)


def test_meta_normaliser_with_nan_mean_and_negative_variance_is_refused(run_dir, tmp_path, capsys) -> None:
    path = _meta_with(run_dir, tmp_path, {"enabled": True, "mean": [float("nan")] * 3, "var": [-1.0] * 3,
                                          "count": 5.0, "clip": 10.0, "epsilon": 1e-8})
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "bad normaliser statistics" in one_error_line(capsys)


def test_json_stats_with_null_count_are_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"mean": [0.0] * 3, "var": [1.0] * 3, "count": None}))
    assert run_cli(train.main, [*tiny(), "--normalize-obs", "--vecnormalize-path", str(path),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "count must be a finite number > 0" in one_error_line(capsys)


def test_json_stats_with_negative_clip_are_one_line(tmp_path, capsys) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"mean": [0.0] * 3, "var": [1.0] * 3, "count": 4, "clip": -1}))
    assert run_cli(train.main, [*tiny(), "--normalize-obs", "--vecnormalize-path", str(path),
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "clip must be a finite number > 0" in one_error_line(capsys)


def test_zip_member_declaring_gigabytes_is_refused_unread(run_dir, tmp_path) -> None:
    padded = json.dumps({"pad": "0" * (17 * 2**20)}).encode()
    evil = rewrite_zip(run_dir / "final_model.zip", tmp_path / "bomb.zip", members={"data": padded},
                       compress=zipfile.ZIP_DEFLATED)
    assert evil.stat().st_size < 2**20  # 17 MB of zeros deflate to kilobytes
    with pytest.raises(ValueError, match="declares .* bytes, more than"):
        read_sb3_zip(evil)


def test_zip_policy_with_non_tensor_values_is_one_line(run_dir, tmp_path, capsys) -> None:
    buffer = io.BytesIO()
    torch.save({"actor.mu.0.weight": 3}, buffer)
    path = rewrite_zip(run_dir / "final_model.zip", tmp_path / "bad.zip", members={"policy.pth": buffer.getvalue()})
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "policy.pth must map names to tensors" in one_error_line(capsys)


def test_zip_num_timesteps_overflow_is_one_line(run_dir, tmp_path, capsys) -> None:
    path = rewrite_zip(run_dir / "final_model.zip", tmp_path / "bad.zip")
    with zipfile.ZipFile(path) as archive:
        contents = {n: archive.read(n) for n in archive.namelist()}
    contents["data"] = contents["data"].replace(b'"num_timesteps": 120', b'"num_timesteps": 1e400')
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in contents.items():
            archive.writestr(name, raw)
    assert run_cli(evaluate.main, ["--model", str(path), *PENDULUM]) == 2
    assert "num_timesteps" in one_error_line(capsys)


# ------------------------------------------------------------------------------------------------------
# 4. Writing: regular files only, a non-empty locked save dir, full disks leave the previous file intact.

def test_json_into_a_fifo_is_refused_and_the_fifo_kept(run_dir, tmp_path, capsys) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    assert run_cli(evaluate.main, ["--model", str(run_dir / "checkpoint.pt"), *PENDULUM, "--json", str(fifo)]) == 2
    assert "is a FIFO, not a regular file" in one_error_line(capsys)
    assert fifo.is_fifo()


def test_json_onto_a_device_is_refused_and_the_device_kept(run_dir, tmp_path, capsys) -> None:
    # A device node of our own (a copy of /dev/null's numbers): code that wrongly renames over its target then
    # replaces this node, never the system's /dev/null (as root, it would).
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert run_cli(evaluate.main, ["--model", str(run_dir / "checkpoint.pt"), *PENDULUM, "--json", str(device)]) == 2
    assert "character device" in one_error_line(capsys)
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_bc_out_onto_a_directory_is_refused(tmp_path, capsys) -> None:
    data = tiny_dataset(tmp_path / "d.npz")
    assert run_cli(bc_train.main, ["--dataset", str(data), "--out", str(tmp_path), "--epochs", "1"]) == 2
    assert "is a directory" in one_error_line(capsys)


def test_empty_save_dir_is_refused(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli(train.main, [*tiny(), "--save-dir", ""]) == 2
    assert "--save-dir needs a directory path" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_save_dir_in_use_is_refused_naming_the_holder(tmp_path, capsys) -> None:
    save = tmp_path / "run"
    save.mkdir()
    with SaveDirLock(save):
        assert run_cli(train.main, [*tiny(), "--save-dir", str(save)]) == 2
    assert f"in use by another run (pid {os.getpid()})" in one_error_line(capsys)
    assert not (save / "metrics.jsonl").exists()


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path, capsys) -> None:
    save = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    save.mkdir()
    (save / ".lock").write_text(f"{holder.pid}\n")  # what a killed run leaves: its pid, the flock gone with it
    holder.kill()
    holder.wait()
    assert run_cli(train.main, [*tiny(), "--save-dir", str(save)]) == 0
    assert f"locked by pid {holder.pid}, which is no longer running" in capsys.readouterr().out
    assert (save / "checkpoint.pt").is_file()


def test_metrics_file_that_is_a_fifo_is_refused(tmp_path, capsys) -> None:
    save = tmp_path / "run"
    save.mkdir()
    os.mkfifo(save / "metrics.jsonl")
    assert run_cli(train.main, [*tiny(), "--save-dir", str(save)]) == 2
    assert "metrics.jsonl" in one_error_line(capsys)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_on_checkpoint_keeps_the_previous_one(run_dir, tmp_path, capsys, monkeypatch) -> None:
    save = tmp_path / "run"
    save.mkdir()
    for name in ("checkpoint.pt", "metrics.jsonl"):
        (save / name).write_bytes((run_dir / name).read_bytes())
    before = (save / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)
    assert run_cli(train.main, [*tiny(140), "--save-replay",
                                "--resume-model", str(save / "checkpoint.pt"), "--save-dir", str(save)]) == 2
    assert "No space left on device (the previous file is unchanged)" in one_error_line(capsys)
    assert (save / "checkpoint.pt").read_bytes() == before and not list(save.glob(".*.tmp"))


def test_full_disk_on_bc_file_keeps_the_previous_one(tmp_path, capsys, monkeypatch) -> None:
    data, out = tiny_dataset(tmp_path / "d.npz"), tmp_path / "bc.pt"
    out.write_bytes(b"previous")
    monkeypatch.setattr(os, "fsync", _no_space)
    assert run_cli(bc_train.main, ["--dataset", str(data), "--out", str(out), "--epochs", "1", "--net-arch", "8",
                                   "--device", "cpu"]) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert out.read_bytes() == b"previous" and not list(tmp_path.glob(".*.tmp"))


def test_full_disk_on_json_keeps_the_previous_one(run_dir, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "e.json"
    out.write_text("previous")
    monkeypatch.setattr(os, "fsync", _no_space)
    assert run_cli(evaluate.main, ["--model", str(run_dir / "checkpoint.pt"), *PENDULUM, "--episodes", "1",
                                   "--json", str(out)]) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert out.read_text() == "previous" and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------------------------------
# 5. SIGINT / SIGTERM write a final checkpoint at the current step and say how to resume.

class SignalAt(gym.vector.VectorWrapper):
    """Raises `signums` (in order) inside vector step number `at`."""

    def __init__(self, env, at: int, signums: tuple[int, ...]) -> None:
        super().__init__(env)
        self.at, self.signums, self.steps = at, signums, 0

    def step(self, actions):
        self.steps += 1
        if self.steps == self.at:
            for signum in self.signums:
                signal.raise_signal(signum)
        return self.env.step(actions)


def _signalling_env(monkeypatch, at: int, *signums: int) -> None:
    make = workflow.builders.make_gym_vec_env
    monkeypatch.setattr(workflow.builders, "make_gym_vec_env", lambda *a, **k: SignalAt(make(*a, **k), at, signums))


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_at_the_current_step(signum, code, tmp_path, capsys, monkeypatch) -> None:
    save = tmp_path / "run"
    argv = [*tiny(100000), "--save-dir", str(save)]
    _signalling_env(monkeypatch, 37, signum)
    before = signal.getsignal(signum)  # SIG_IGN where the suite runs as a background job without job control
    assert run_cli(train.main, argv) == code
    err = capsys.readouterr().err
    assert f"{signal.Signals(signum).name} at timestep 37: wrote {save / 'checkpoint.pt'}; resume with: " in err
    assert load_checkpoint(save / "checkpoint.pt")["runner"]["timesteps"] == 37
    assert signal.getsignal(signum) == before  # handlers restored
    monkeypatch.undo()
    resume = shlex.split(err.split("resume with: python train.py ", 1)[1].splitlines()[0])
    resume[resume.index("--total-timesteps") + 1] = "60"
    assert run_cli(train.main, resume) == 0
    assert load_checkpoint(save / "checkpoint.pt")["runner"]["timesteps"] == 60


def test_second_ctrl_c_exits_at_once(tmp_path, capsys, monkeypatch) -> None:
    save = tmp_path / "run"
    _signalling_env(monkeypatch, 5, signal.SIGINT, signal.SIGINT)
    assert run_cli(train.main, [*tiny(100000), "--save-dir", str(save)]) == 130
    assert capsys.readouterr().err.endswith("interrupted\n")
    assert not (save / "checkpoint.pt").exists()  # it stopped inside the step: no checkpoint was started


@pytest.mark.slow  # a fresh interpreter: ~5 s
def test_ctrl_c_in_a_real_process_exits_130_with_a_checkpoint(tmp_path) -> None:
    save = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *tiny(1000000),
                             "--log-interval", "200", "--save-dir", str(save)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout:  # wait until it trains
        if line.startswith("[") and "fps" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGINT at timestep" in err and "resume with: python train.py" in err
    assert load_checkpoint(save / "checkpoint.pt")["runner"]["timesteps"] >= 200


# ------------------------------------------------------------------------------------------------------
# 6. Datasets: real, finite values within float32, with the file, the key and the first row named.

def test_dataset_beyond_float32_is_refused(tmp_path, capsys) -> None:
    obs = np.zeros((20, 89))
    obs[7, 3] = 1e39
    data = tiny_dataset(tmp_path / "d.npz", observations=obs)
    assert run_cli(bc_train.main, ["--dataset", str(data), "--out", str(tmp_path / "bc.pt")]) == 2
    err = one_error_line(capsys)
    assert str(data) in err and "observations has values beyond float32's range" in err and "row 7" in err


def test_dataset_of_complex_numbers_is_refused(tmp_path, capsys) -> None:
    data = tiny_dataset(tmp_path / "d.npz", actions=np.zeros((20, 12), np.complex64) + 0.5j)
    assert run_cli(bc_train.main, ["--dataset", str(data), "--out", str(tmp_path / "bc.pt")]) == 2
    assert "actions must hold real numbers" in one_error_line(capsys)


def test_dataset_with_nan_names_key_and_row(tmp_path) -> None:
    obs = np.zeros((20, 89), np.float32)
    obs[11, 0] = np.nan
    with pytest.raises(ValueError, match=r"observations has NaN or inf values \(first at row 11\)"):
        load_demos(tiny_dataset(tmp_path / "d.npz", observations=obs))


def test_dataset_with_an_object_array_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "d.npz"
    np.savez(path, observations=np.array([RunsCode(marker)], dtype=object), actions=np.zeros((1, 12)))
    assert run_cli(bc_train.main, ["--dataset", str(path), "--out", str(tmp_path / "bc.pt")]) == 2
    one_error_line(capsys)
    assert not marker.exists()


def _prefill_argv(data: Path, save: Path) -> list[str]:
    return [*tiny(), "--bc-replay-dataset", str(data), "--bc-replay-fraction", "0.2", "--save-dir", str(save)]


def test_prefill_dataset_beyond_float32_is_refused(tmp_path, capsys) -> None:
    rewards = np.zeros(20)
    rewards[4] = -1e300
    data = tmp_path / "d.npz"
    save_npz(data, {"observations": np.zeros((20, 3)), "actions": np.zeros((20, 1)), "rewards": rewards,
                    "next_observations": np.zeros((20, 3)), "terminated": np.zeros(20, bool)})
    assert run_cli(train.main, _prefill_argv(data, tmp_path / "x")) == 2
    err = one_error_line(capsys)
    assert "rewards has values beyond float32's range (|x| > 3.403e+38; first at row 4)" in err
    assert not (tmp_path / "x").exists()


def test_prefill_dataset_of_complex_numbers_is_refused(tmp_path, capsys) -> None:
    data = tmp_path / "d.npz"
    save_npz(data, {"observations": np.zeros((20, 3), np.complex128), "actions": np.zeros((20, 1))})
    assert run_cli(train.main, _prefill_argv(data, tmp_path / "x")) == 2
    assert "observations must hold real numbers" in one_error_line(capsys)


def test_mocap_of_complex_numbers_is_refused(tmp_path) -> None:
    path = tmp_path / "clip.npz"
    np.savez(path, qpos=np.zeros((4, 19), np.complex128), qvel=np.zeros((4, 18)), frequency=np.array(30.0))
    with pytest.raises(MocapError, match="qpos must hold real numbers"):
        load_mocap(path)


# ------------------------------------------------------------------------------------------------------
# 7. Resume consistency: flags that contradict the checkpoint are errors; changed settings are printed.

def _resume(run_dir: Path, tmp_path: Path, *extra: str) -> list[str]:
    return [*tiny(200), "--resume-model", str(run_dir / "checkpoint.pt"), *extra,
            "--save-dir", str(tmp_path / "x")]


def test_resume_with_another_net_arch_is_one_line(run_dir, tmp_path, capsys) -> None:
    argv = _resume(run_dir, tmp_path)
    argv[argv.index("--net-arch") + 1] = "16,16"
    assert run_cli(train.main, argv) == 2
    assert "a resumed run keeps it: drop --net-arch 16,16" in one_error_line(capsys)


def test_resume_with_normalisation_on_a_run_without_is_one_line(run_dir, tmp_path, capsys) -> None:
    assert run_cli(train.main, _resume(run_dir, tmp_path, "--normalize-obs")) == 2
    assert "trained without observation normalisation" in one_error_line(capsys)


def test_resume_with_total_below_the_count_done_is_one_line(run_dir, tmp_path, capsys) -> None:
    argv = _resume(run_dir, tmp_path)
    argv[argv.index("--total-timesteps") + 1] = "50"
    assert run_cli(train.main, argv) == 2
    assert "has done 120 timesteps" in one_error_line(capsys)


def test_resume_with_another_action_mode_is_one_line(tmp_path, capsys) -> None:
    cfg = TD3Config(net=NetConfig(net_arch=(8,)))
    algo = build_algorithm("td3", 89, -np.ones(12, np.float32), np.ones(12, np.float32), cfg)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, algo_name="td3", config=cfg, algo_state=algo.state_dict(), obs_shape=(89,),
                    action_low=-np.ones(12), action_high=np.ones(12), runner_state={"timesteps": 10},
                    metadata={"tasks": ["kick_to_target"], "action_mode": "pd", "action_repeat": 1})
    assert run_cli(train.main, ["--resume-model", str(path), "--tasks", "kick_to_target", "--n-envs", "1",
                                "--total-timesteps", "20", "--max-episode-steps", "10", "--eval-episodes", "1",
                                "--save-dir", str(tmp_path / "x")]) == 2
    assert "trained with --action-mode pd; pass it again (got torque)" in one_error_line(capsys)


def test_resume_with_another_buffer_size_than_the_saved_replay_is_one_line(run_dir, tmp_path, capsys) -> None:
    assert run_cli(train.main, _resume(run_dir, tmp_path, "--buffer-size", "4000")) == 2
    assert "replay capacity mismatch" in one_error_line(capsys)


def test_resume_with_another_lr_is_printed_and_applied(run_dir, tmp_path, capsys) -> None:
    save = tmp_path / "x"
    assert run_cli(train.main, _resume(run_dir, tmp_path, "--lr", "0.01")) == 0
    assert "note: --resume-model: learning_rate 0.001 -> 0.01 (applies from now on)" in capsys.readouterr().out
    state = load_checkpoint(save / "checkpoint.pt")["algo_state"]
    assert state["actor_optimizer"]["param_groups"][0]["lr"] == 0.01


# ------------------------------------------------------------------------------------------------------
# 8. Every option is checked when parsed: nothing trains and then dies at its final evaluation.

@pytest.mark.parametrize(("argv", "message"), [
    (["--seed", "-1"], "argument --seed: seed -1 is outside [0, 4294967295]"),
    (["--seed", str(2**32)], "argument --seed: seed 4294967296 is outside"),
    (["--eval-seeds", "1,1"], "--eval-seeds must be distinct"),
    (["--eval-seeds", str(2**32)], "--eval-seeds values must be <= 4294967295"),
    (["--eval-seeds-random", "10001"], "--eval-seeds-random must be in [0, 10000]"),
    (["--ktt-steps-weight", "nan"], "argument --ktt-steps-weight: 'nan' is not a finite number"),
    (["--steps-weight", "inf"], "argument --steps-weight: 'inf' is not a finite number"),
    (["--lr", "nan"], "argument --lr: 'nan' is not a finite number"),
    (["--action-noise-sigma", "inf"], "argument --action-noise-sigma: 'inf' is not a finite number"),
    (["--eval-episodes", "100001"], "--eval-episodes must be <= 100000"),
])
def test_train_option_out_of_range_is_one_line(argv, message, tmp_path, capsys) -> None:
    assert run_cli(train.main, [*tiny(), *argv, "--save-dir", str(tmp_path / "x")]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "x").exists()


def test_train_binary_junk_config_is_one_line(tmp_path, capsys) -> None:
    junk = tmp_path / "run.yaml"
    junk.write_bytes(bytes(range(256)) * 4)
    assert run_cli(train.main, ["--config", str(junk), "--save-dir", str(tmp_path / "x")]) == 2
    assert "not a UTF-8 text file" in one_error_line(capsys)


def test_train_config_with_a_python_tag_runs_no_code(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    assert run_cli(train.main, ["--config", str(cfg), "--save-dir", str(tmp_path / "x")]) == 2
    assert "not valid YAML" in one_error_line(capsys)
    assert not marker.exists()


def test_train_config_with_a_nested_value_is_one_line(tmp_path, capsys) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("eval-seeds: &a [[1, 2], [3]]\n")
    assert run_cli(train.main, ["--config", str(cfg), "--save-dir", str(tmp_path / "x")]) == 2
    assert "a list must hold plain values" in one_error_line(capsys)


def test_evaluate_seed_out_of_range_is_one_line(capsys) -> None:
    assert run_cli(evaluate.main, ["--policy", "zero", "--eval-seeds", str(2**32)]) == 2
    assert "--eval-seeds values must be <= 4294967295" in one_error_line(capsys)


def test_bc_train_negative_seed_is_one_line(tmp_path, capsys) -> None:
    assert run_cli(bc_train.main, ["--dataset", "d.npz", "--seed", "-1", "--out", str(tmp_path / "o.pt")]) == 2
    assert "argument --seed" in one_error_line(capsys)


def test_bc_record_repeated_seeds_are_one_line(tmp_path, capsys) -> None:
    assert run_cli(bc_record.main, [*SHORT_RECORD, "--seeds", "3,3", "--out", str(tmp_path / "d.npz")]) == 2
    assert "--seeds must be distinct" in one_error_line(capsys)
