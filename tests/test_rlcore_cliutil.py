"""rlcore.cliutil.parse_net_arch: the one --net-arch parser of train.py and bc.train."""

from __future__ import annotations

import pytest

from rlcore.cliutil import UsageError, parse_net_arch


def test_net_arch_parses_to_a_tuple_of_sizes() -> None:
    assert parse_net_arch("256,256,128") == (256, 256, 128)
    assert parse_net_arch("8") == (8,)
    assert parse_net_arch(" 64, 32") == (64, 32)


@pytest.mark.parametrize("text", ["", "64,,32", "64,x", "1.5", "64,0", "-8", "64,"])
def test_bad_net_arch_is_a_usage_error_quoting_the_text(text: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        parse_net_arch(text)
    assert str(excinfo.value) == f"--net-arch must be comma-separated positive integers, got {text!r}"
