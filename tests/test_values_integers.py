"""definitions.values names an integer too long for str() instead of raising ValueError."""

from __future__ import annotations

import pytest

from definitions.errors import InvalidRequestError
from definitions.values import check_json, require_document


def test_an_integer_beyond_str_limit_is_a_problem_not_a_crash() -> None:
    assert check_json({"n": -(10**5000)}, "data") == [
        "data.n: expected an integer that fits in 64 bits, found one of 16610 bits"
    ]
    assert check_json([2**64], "data") == [
        "data[0]: expected an integer that fits in 64 bits, found one of 65 bits"
    ]
    with pytest.raises(InvalidRequestError, match=r"attributes\.n: expected an integer"):
        require_document({"n": 10**5000}, "attributes")
