from __future__ import annotations

import pytest

from alertd.ruletest.notation import MISSING, STALE, expand_values

CASES = [
    ("plain", "1 2 3", [1.0, 2.0, 3.0]),
    ("count-up", "0+10x3", [0.0, 10.0, 20.0, 30.0]),
    ("count-down", "10-2x2", [10.0, 8.0, 6.0]),
    ("repeat", "1x2", [1.0, 1.0, 1.0]),
    ("missing", "1 _ 3", [1.0, MISSING, 3.0]),
    ("missing-run", "_x3", [MISSING, MISSING, MISSING]),
    ("stale", "1 stale", [1.0, STALE]),
    ("negative-start", "-5+5x2", [-5.0, 0.0, 5.0]),
    ("exponent", "1e3", [1000.0]),
    ("fraction-step", "0+0.5x2", [0.0, 0.5, 1.0]),
    ("inf", "Inf", [float("inf")]),
    ("mixed", "0+1x1 _ 7x1 stale", [0.0, 1.0, MISSING, 7.0, 7.0, STALE]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_expand(text: str, expected: list[object]) -> None:
    assert expand_values(text) == expected


@pytest.mark.parametrize("text", ["1+x3", "abc", "1x", "_xa", "1+2", "--1"],
                         ids=["no-step", "word", "no-count", "bad-missing-count", "no-x", "double-minus"])
def test_bad_tokens_name_the_token(text: str) -> None:
    with pytest.raises(ValueError, match="bad token"):
        expand_values(text)
