"""The custom INT8 ops' Python side. ``import compress.ops.kernels`` registers ``torch.ops.compress``; this package itself loads nothing, so the build can import ``compress.ops.build``."""
