"""The optional hub path, with a fake huggingface_hub: download calls, the HF_HOME cache, the per-process
cache, and one-line errors when the package is missing or the download fails."""

import os
import sys
import types
from pathlib import Path

import pytest

import train
from envs import controller as controller_module
from envs import hub
from envs.command import CommandOptions
from envs.controller import HUB_CONFIG, HUB_MODEL, HUB_REPO, controller_files, load_controller
from envs.hub import HubUnavailable, configure_hf, hf_download
from rlcore.cliutil import run_cli
from tests.controller_files import write_controller

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")

HF_VARS = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "HF_TOKEN",
           "HUGGINGFACE_HUB_TOKEN")


@pytest.fixture
def clean(monkeypatch):
    """No HF variables, empty process caches; everything restored afterwards."""
    for name in HF_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "_FETCHED", {})
    monkeypatch.setattr(controller_module, "_LOADED", {})
    return monkeypatch


def fake_hub(monkeypatch, files: dict[str, Path] | None = None, error: Exception | None = None) -> list[dict]:
    """Install a fake huggingface_hub whose hf_hub_download records its arguments and serves `files`."""
    calls: list[dict] = []

    def hf_hub_download(**kwargs):
        calls.append(kwargs)
        if error is not None:
            raise error
        return str(files[kwargs["filename"]])

    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = hf_hub_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return calls


def test_configure_hf_sets_the_seed_variables(clean, tmp_path):
    configure_hf("tok", str(tmp_path / "hf"))
    home = str((tmp_path / "hf").resolve())
    assert os.environ["HF_TOKEN"] == os.environ["HUGGINGFACE_HUB_TOKEN"] == "tok"
    assert os.environ["HF_HOME"] == home
    assert os.environ["HF_HUB_CACHE"] == os.environ["HUGGINGFACE_HUB_CACHE"] == home + "/hub"
    assert os.environ["HF_DATASETS_CACHE"] == home + "/datasets"
    configure_hf(None, None)  # leaves everything alone
    assert os.environ["HF_HOME"] == home


def test_download_uses_the_hf_home_cache_and_the_process_cache(clean, tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"x")
    calls = fake_hub(clean, {"a/f.bin": target})
    configure_hf("tok", str(tmp_path / "hf"))
    path = hf_download("org/repo", "a/f.bin", repo_type="dataset", what="a file", local_hint="pass it")
    assert path == target
    assert calls == [{"repo_id": "org/repo", "filename": "a/f.bin", "repo_type": "dataset",
                      "cache_dir": str((tmp_path / "hf" / "hub").resolve()), "token": "tok"}]
    assert hf_download("org/repo", "a/f.bin", repo_type="dataset", what="a file", local_hint="pass it") == target
    assert len(calls) == 1


def test_controller_from_the_hub_is_fetched_and_loaded_once(clean, tmp_path):
    model = write_controller(tmp_path)
    calls = fake_hub(clean, {HUB_MODEL: model, HUB_CONFIG: model.with_suffix(".yaml")})
    configure_hf(None, str(tmp_path / "hf"))
    cfg, net = load_controller(*controller_files(None, None))
    assert [(c["repo_id"], c["filename"], c["repo_type"]) for c in calls] == [
        (HUB_REPO, HUB_MODEL, "model"), (HUB_REPO, HUB_CONFIG, "model")]
    assert all(c["cache_dir"] == str((tmp_path / "hf" / "hub").resolve()) for c in calls)
    CommandOptions().prepare()  # the command mode's default: the hub controller, from the process cache
    assert len(calls) == 2 and load_controller(*controller_files(None, None))[1] is net


def test_missing_package_is_a_one_line_error_naming_the_file(clean):
    clean.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(HubUnavailable, match="huggingface_hub is not installed") as err:
        controller_files(None, None)
    message = str(err.value)
    assert "\n" not in message and HUB_MODEL in message and HUB_REPO in message and "--low-level-controller" in message


def test_offline_is_a_one_line_error(clean):
    fake_hub(clean, error=OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection."))
    with pytest.raises(HubUnavailable, match="could not fetch robot/lower_t1_control.pt") as err:
        controller_files(None, None)
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)


def test_train_command_mode_offline_without_a_controller_exits_2(clean, tmp_path, capsys):
    clean.setitem(sys.modules, "huggingface_hub", None)
    argv = ["--action-mode", "command", "--tasks", "kick_to_target", "--n-envs", "1", "--save-dir",
            str(tmp_path / "run"), "--hf-home", str(tmp_path / "hf")]
    assert run_cli(train.main, argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: low-level controller:") and HUB_MODEL in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
