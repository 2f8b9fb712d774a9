"""Reading things in: model formats (HF, pruned HF, TorchScript, .pt2, opt-in pickle, ONNX), data files, the built-in text, distillation checkpoints."""
