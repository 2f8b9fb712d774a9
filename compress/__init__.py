"""compress: make a fine-tuned model smaller and faster, with proof it still answers correctly.

Python API::

    from compress import load_model, run, RunOptions, default_recipe
    model = load_model("path/to/hf-dir")
    result = run(model, default_recipe(int8=True), RunOptions(out_dir=Path("out")))
"""

__version__ = "0.1.0"

from compress.core.errors import CompressError  # noqa: E402

# Lazy: `import compress` stays cheap (the CLI's --help must not import torch).
_LAZY = {
    "load_model": "compress.load.loaders", "run": "compress.pipeline.run", "RunOptions": "compress.pipeline.options",
    "default_recipe": "compress.pipeline.options", "quantize_": "compress.pipeline.quantize_api",
    "Int8StaticConfig": "compress.pipeline.static_int8.config", "Int8SearchConfig": "compress.pipeline.static_int8.config",
    "Int8DynamicConfig": "compress.passes.int8_kernels", "OnnxExportConfig": "export.onnx.export",
    "OnnxInt8Config": "export.int8.ort_quantize", "SmoothQuantConfig": "compress.passes.smoothquant",
    "prune_": "compress.passes.prune", "HeadPruneConfig": "compress.passes.prune_heads", "LayerPruneConfig": "compress.passes.prune_layers",
    "ChannelPruneConfig": "compress.passes.prune_channels", "MagnitudePruneConfig": "compress.passes.prune_unstructured",
    "SemiStructuredConfig": "compress.passes.prune_unstructured", "distill": "compress.passes.distill",
    "DistillConfig": "compress.passes.distill", "save_hf_dir": "compress.load.hf_pruned",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


__all__ = ["CompressError", *sorted(_LAZY)]
