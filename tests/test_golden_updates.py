"""The first 20 updates of TD3, SAC and PPO (losses and the actions after them) equal the recorded golden traces
(tests/golden_updates.py): a refactor of the engine must not change what it computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden_updates import ALGOS, ENVS, GOLDEN_FILE, cpu_model, trace

GOLDEN = json.loads(GOLDEN_FILE.read_text())
EXACT = GOLDEN["cpu_model"] == cpu_model()
"""Exact on the CPU model that recorded the traces; elsewhere the matrix-product kernels round differently."""


@pytest.mark.parametrize("env_name", ENVS)
@pytest.mark.parametrize("algo_name", ALGOS)
def test_first_updates_equal_the_golden_trace(algo_name: str, env_name: str) -> None:
    expected = GOLDEN["traces"][f"{algo_name}/{env_name}"]
    got = trace(algo_name, env_name)
    assert [sorted(m) for m in got["metrics"]] == [sorted(m) for m in expected["metrics"]]
    for name in {k for m in expected["metrics"] for k in m}:
        want = np.array([m[name] for m in expected["metrics"] if name in m])
        have = np.array([m[name] for m in got["metrics"] if name in m])
        if EXACT:
            np.testing.assert_array_equal(have, want, err_msg=name)
        else:
            np.testing.assert_allclose(have, want, rtol=1e-3, atol=1e-5, err_msg=name)
    if EXACT:
        np.testing.assert_array_equal(got["actions"], expected["actions"])
    else:
        np.testing.assert_allclose(got["actions"], expected["actions"], rtol=1e-3, atol=1e-4)
