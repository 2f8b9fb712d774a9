"""Measuring: latency percentiles, retention metrics, the environment (CPU, instruction set, GPU, versions), interleaved kernel timing."""
