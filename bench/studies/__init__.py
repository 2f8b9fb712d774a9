"""The runnable benchmarks (``python -m bench.studies.NAME``); results go to bench/results/. Like a user, they may use every layer."""
