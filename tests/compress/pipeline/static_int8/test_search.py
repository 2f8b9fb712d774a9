"""The accuracy-aware search's order of float-layer candidates."""

from __future__ import annotations

from compress.pipeline.static_int8.search import float_layer_limit, next_float_count


def _walk(meets_from: int, limit: int) -> list[int]:
    """The counts tried when every count from ``meets_from`` on meets the tolerance."""
    tried, missed, met, count = [], 0, None, 1
    while count is not None:
        tried.append(count)
        missed, met = (missed, count) if count >= meets_from else (count, met)
        count = next_float_count(missed, met, limit)
    return tried


def test_float_counts_double_until_one_meets_then_bisect_down_to_the_fewest():
    assert _walk(1, 16) == [1]
    assert _walk(5, 16) == [1, 2, 4, 8, 6, 5]
    assert _walk(7, 16) == [1, 2, 4, 8, 6, 7]
    assert _walk(12, 16) == [1, 2, 4, 8, 16, 12, 10, 11]


def test_float_counts_stop_at_the_limit_when_none_meets():
    assert _walk(99, 16) == [1, 2, 4, 8, 16]
    assert _walk(99, 5) == [1, 2, 4, 5]
    assert _walk(99, 1) == [1]


def test_without_a_configured_limit_half_the_groups_may_stay_float_but_never_all():
    assert float_layer_limit(None, 47) == 23  # the OCR recogniser's Conv groups: 16 were not enough
    assert float_layer_limit(None, 12) == 11  # at least 16, and something stays INT8
    assert float_layer_limit(4, 47) == 4 and float_layer_limit(None, 1) == 0
