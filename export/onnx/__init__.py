"""PyTorch → ONNX, verified against PyTorch; ONNX checks, sessions, the n:m sparsity check of exported weights."""
