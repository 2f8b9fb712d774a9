"""File-to-file steps: PyTorch to ONNX with a parity check, ONNX to INT8, manifests."""
