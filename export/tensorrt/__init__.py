"""TensorRT: engine builds, the optimization profile, the QDQ compatibility check, the engine runner, what is missing where TensorRT is not."""
