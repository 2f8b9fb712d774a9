"""Measurement: latency, size and accuracy retention, with peers side by side."""
