from bench.measure.kernel_timing import interleaved_ms


def test_each_variant_is_timed_every_round_with_its_setup_run_untimed_before_it():
    log = []
    variants = {"a": lambda: log.append("a"), "b": lambda: log.append("b")}
    timings = interleaved_ms(variants, rounds=2, calls=1, before={"b": lambda: log.append("setup b")})
    assert set(timings) == {"a", "b"} and timings["a"]["rounds"] == 2
    # warm-up (3 calls each, b's setup first), then rounds alternating a, setup b, b
    assert log == ["a"] * 3 + ["setup b"] + ["b"] * 3 + ["a", "setup b", "b"] * 2
