"""Backends that run an artifact: PyTorch eager (CPU/CUDA, FP32/FP16/BF16), ONNX Runtime (CPU, CUDA, TensorRT EPs), TensorRT engines; the registry says which can run here."""
