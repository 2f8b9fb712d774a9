"""PyTorch → PyTorch: pruning, distillation, SmoothQuant, the INT8 Linear swap. A pass is a frozen config and one function on a Model; it never writes a file."""
