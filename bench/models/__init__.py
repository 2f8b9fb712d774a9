"""Small real models trained in seconds, shared by the tests and the benchmarks."""
