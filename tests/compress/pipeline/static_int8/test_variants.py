"""Which graph variants may win on speed when their answers differ."""

from compress.pipeline.static_int8.variants import accurate_enough


def test_variants_within_the_tolerance_may_win_on_speed_else_only_the_most_accurate():
    assert accurate_enough({}, 0.01) is None  # the same answers: speed alone decides
    assert accurate_enough({"plain": 0.004, "conv": 0.009}, 0.01) == {"plain", "conv"}
    assert accurate_enough({"plain": 0.004, "conv": 0.02}, 0.01) == {"plain"}
    assert accurate_enough({"plain": 0.05, "conv": 0.03}, 0.01) == {"conv"}
    assert accurate_enough({"plain": 0.05, "conv": 0.05}, 0.01) == {"plain", "conv"}  # a tie: speed decides (the plain one on a tie)
