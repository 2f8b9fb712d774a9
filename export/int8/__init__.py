"""ONNX FP32 → INT8: ONNX Runtime's quantizer, calibration observers, QDQ insertion, the CPU and TensorRT INT8 files."""
