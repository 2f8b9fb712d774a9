from bench.measure.environment import capture, fingerprint, target_name


def test_capture_records_cpu_threads_and_versions():
    import torch

    env = capture(threads=3)
    assert env["cpu"]["model"] and env["cpu"]["logical_cores"] >= 1 and env["threads"] == 3
    assert env["versions"]["torch"] == torch.__version__
    assert (env["gpu"] is None) == (not torch.cuda.is_available())


def test_target_name_is_the_device_and_threads():
    env = capture(threads=2)
    assert target_name(env).endswith("/2t") and target_name(env).startswith("cuda:" if env["gpu"] else "cpu:")
    gpu_env = {**env, "gpu": {"name": "NVIDIA H100 80GB HBM3", "driver": "580.1"}}
    assert target_name(gpu_env) == "cuda:NVIDIA H100 80GB HBM3/2t"


def test_fingerprint_differs_when_threads_or_runtime_versions_differ():
    env = capture(threads=2)
    assert fingerprint(env) == fingerprint(capture(threads=2))
    assert fingerprint(env) != fingerprint(capture(threads=1))
    assert fingerprint(env) != fingerprint({**env, "versions": {**env["versions"], "onnxruntime": "0.0"}})


def test_capture_names_the_cpu_kernel_path_and_fingerprints_tell_paths_apart():
    from compress.ops.cpu_features import ISA_NAMES, cpu_isa

    env = capture(threads=2)
    assert env["isa"] == cpu_isa() and env["isa"] in ISA_NAMES
    assert fingerprint(env) != fingerprint({**env, "isa": "portable" if env["isa"] != "portable" else "avx2"})
