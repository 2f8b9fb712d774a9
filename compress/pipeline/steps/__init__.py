"""The handlers that run each kind of recipe step. Importing this package registers them all."""

from compress.pipeline.steps import (  # noqa: F401  (each module registers its handlers)
    aoti_package,
    int8_kernels,
    model_passes,
    onnx_export,
    onnx_int8,
    onnx_static_int8,
    prune_search,
    tensorrt_engine,
)
