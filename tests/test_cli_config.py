"""--config run.yaml: the same options as the flags, flags win, bad files are one-line errors."""

from __future__ import annotations

import json

import pytest

import train
from rlcore.cliutil import MAX_CONFIG_BYTES, ArgumentParser, UsageError, parse_with_config, run_cli


def _parser() -> ArgumentParser:
    parser = ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--net-arch")
    parser.add_argument("--normalize-obs", action="store_true")
    parser.add_argument("--algo", choices=["td3", "sac"], default="td3")
    return parser


def test_config_values_are_defaults_and_flags_win(tmp_path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("lr: 0.001\nnet-arch: [64, 32]\nnormalize_obs: true\nalgo: sac\n")
    args = parse_with_config(_parser(), ["--config", str(cfg), "--lr", "0.5"])
    assert (args.lr, args.net_arch, args.normalize_obs, args.algo) == (0.5, "64,32", True, "sac")
    assert parse_with_config(_parser(), []).lr is None


@pytest.mark.parametrize("text, message", [
    ("learning_rate: 0.1\n", "unknown option 'learning_rate'"),
    ("lr: fast\n", "invalid value 'fast'"),
    ("normalize-obs: 1\n", "must be true or false"),
    ("algo: ppo\n", "'ppo' is not one of td3, sac"),
    ("- lr\n", "expected a mapping"),
    ("lr: [\n", "not valid YAML"),
])
def test_bad_config_files(tmp_path, text: str, message: str) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_with_config(_parser(), ["--config", str(cfg)])
    with pytest.raises(UsageError, match="No such file"):
        parse_with_config(_parser(), ["--config", str(tmp_path / "missing.yaml")])


def test_an_oversized_config_file_is_refused_unread(tmp_path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_bytes(b"#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(UsageError, match=f"--config {cfg}: larger than the {MAX_CONFIG_BYTES:,} bytes"):
        parse_with_config(_parser(), ["--config", str(cfg)])


def test_train_with_config_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "run.yaml"
    out = tmp_path / "p"
    cfg.write_text(f"env-id: Pendulum-v1\nalgo: sac\ntotal-timesteps: 250\nlearning-starts: 100\n"
                   f"eval-episodes: 1\nsave-dir: {out}\neval-seeds-random: 2\n")
    assert run_cli(train.main, ["--config", str(cfg), "--seed", "3"]) == 0
    payload_algo = json.loads((out / "final_model.meta.json").read_text())["algo"]
    assert payload_algo == "sac"
    cfg.write_text("env-id: Pendulum-v1\nbuffer_sz: 10\n")
    assert run_cli(train.main, ["--config", str(cfg), "--save-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'buffer_sz'" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
