"""compress: make a fine-tuned model smaller and faster, with proof it still answers correctly.

Python API::

    from compress import load_model, run, RunOptions, default_recipe
    model = load_model("path/to/hf-dir")
    result = run(model, default_recipe(int8=True), RunOptions(out_dir=Path("out")))
"""

__version__ = "0.1.0"

from compress.errors import CompressError  # noqa: E402


def __getattr__(name):
    # Lazy: `import compress` stays cheap (the CLI's --help must not import torch).
    if name == "load_model":
        from compress.loaders import load_model
        return load_model
    if name in ("run", "RunOptions", "default_recipe"):
        from compress import runner
        return getattr(runner, name)
    if name in ("quantize_", "Int8StaticConfig"):
        from compress.passes import quantize
        return getattr(quantize, name)
    if name == "Int8SearchConfig":
        from compress.passes.int8_search import Int8SearchConfig
        return Int8SearchConfig
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)


_LAZY = {
    "prune_": "compress.passes.prune", "HeadPruneConfig": "compress.passes.prune_heads",
    "ChannelPruneConfig": "compress.passes.prune_channels", "MagnitudePruneConfig": "compress.passes.prune_unstructured",
    "SemiStructuredConfig": "compress.passes.prune_unstructured", "distill": "compress.passes.distill",
    "DistillConfig": "compress.passes.distill", "save_hf_dir": "compress.hf_pruned",
}


__all__ = ["ChannelPruneConfig", "CompressError", "DistillConfig", "HeadPruneConfig", "Int8SearchConfig", "Int8StaticConfig",
           "MagnitudePruneConfig", "RunOptions", "SemiStructuredConfig", "default_recipe", "distill", "load_model", "prune_",
           "quantize_", "run", "save_hf_dir"]
