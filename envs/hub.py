"""Optional Hugging Face hub access for the controller and the kick macros.

The seed downloaded the walking controller and the mocap clips from the hub at env construction
(docs/seed_pipeline.md). Here the hub is optional: `huggingface_hub` is the `hub` extra,
every file can be given as a local path instead, and any failure to fetch (package missing, offline,
file not found, no access) is a `HubUnavailable` one-line error that names the file to download and
where to put it. A file is fetched at most once per process.
"""

from __future__ import annotations

import os
from pathlib import Path

_FETCHED: dict[tuple[str, str, str, str | None], Path] = {}
"""(repo_id, filename, repo_type, cache dir) -> local path, so a process asks the hub once per file."""


class HubUnavailable(ValueError):
    """A hub file could not be fetched; the message says what to download and where to put it."""


def configure_hf(token: str | None, home: str | None) -> None:
    """Point the hub client at a token and a cache folder through its environment variables.

    `token` sets HUGGINGFACE_HUB_TOKEN and HF_TOKEN; `home` sets HF_HOME, HUGGINGFACE_HUB_CACHE and
    HF_HUB_CACHE (<home>/hub) and HF_DATASETS_CACHE (<home>/datasets), as the seed's --hf-token/--hf-home did.
    None leaves the corresponding variables alone. Call it before any download.
    """
    if token:
        os.environ["HUGGINGFACE_HUB_TOKEN"] = token
        os.environ["HF_TOKEN"] = token
    if home:
        root = Path(home).expanduser().resolve()
        os.environ["HF_HOME"] = str(root)
        os.environ["HUGGINGFACE_HUB_CACHE"] = os.environ["HF_HUB_CACHE"] = str(root / "hub")
        os.environ["HF_DATASETS_CACHE"] = str(root / "datasets")


def hub_cache_dir() -> str | None:
    """The hub cache folder the environment asks for, or None for the client's default.

    Passed explicitly on every download because huggingface_hub reads these variables once, at import:
    a configure_hf call after the import would otherwise be ignored.
    """
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return os.environ[name]
    if os.environ.get("HF_HOME"):
        return str(Path(os.environ["HF_HOME"]) / "hub")
    return None


def hf_download(repo_id: str, filename: str, *, repo_type: str, what: str, local_hint: str) -> Path:
    """The local path of `filename` in hub repo `repo_id`, downloaded (or found in the cache) on first use.

    `what` names the file for people ("low-level controller"), `local_hint` says how to pass a local copy
    instead ("pass it with --low-level-controller PATH"). Raises HubUnavailable, one line, when
    huggingface_hub is not installed or the download fails for any reason.
    """
    cache_dir = hub_cache_dir()
    key = (repo_id, filename, repo_type, cache_dir)
    if key in _FETCHED:
        return _FETCHED[key]
    where = f"{filename} from the hub {repo_type} {repo_id}"
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise HubUnavailable(f"{what}: huggingface_hub is not installed (pip install '.[hub]'); "
                             f"download {where} and {local_hint}") from None
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGINGFACE_HUB_TOKEN") or None
    try:
        path = Path(hf_hub_download(repo_id=repo_id, filename=filename, repo_type=repo_type,
                                    cache_dir=cache_dir, token=token))
    except Exception as exc:  # offline, HTTP errors, missing file, no access: all mean "get it yourself"
        reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        raise HubUnavailable(f"{what}: could not fetch {where} ({exc.__class__.__name__}: {reason}); "
                             f"download it and {local_hint}") from None
    _FETCHED[key] = path
    return path
