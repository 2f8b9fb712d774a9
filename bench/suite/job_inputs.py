"""The held-out inputs of one job: built from the reference model (its tokenizer or input spec) or the user's --eval file."""

from __future__ import annotations

from bench.suite.artifacts import Job
from compress.core.errors import BenchError, InputError
from compress.core.model import Model
from compress.core.spec import TensorSpec
from compress.load.data import Dataset, default_data, latency_batches, load_data_file


def job_inputs(job: Job, options) -> tuple[Model, Dataset, dict[int, list[dict]], list[dict] | None]:
    """(the reference model as loaded here, the evaluation batches, four latency batches per batch size,
    calibration batches for the quantize_static peer or None)."""
    model = reference_model(job, options)
    eval_file = options.eval or job.eval_file  # --eval wins over the file `compress` recorded
    try:
        if eval_file is not None:
            evaluation = load_data_file(eval_file, model, batch_size=16, seq_len=options.seq_len, samples=options.samples)
        else:
            evaluation = default_data(model, "evaluation", options.samples, 16, options.seq_len)
    except InputError as exc:
        raise BenchError(f"{job.name}: {exc}") from None
    latency = latency_batches(model, options.batch_sizes, options.seq_len, evaluation if eval_file is not None else None)
    calib_file = options.calib or job.calib_file
    calibration = None
    if calib_file is not None and options.peers:
        try:
            calibration = load_data_file(calib_file, model, batch_size=16, seq_len=options.seq_len, samples=options.calib_samples).batches
        except InputError as exc:
            raise BenchError(f"{job.name}: calibration data: {exc}") from None
    return model, evaluation, latency, calibration


def reference_model(job: Job, options) -> Model:
    from compress.load.loaders import load_model

    specs = tuple(options.input_specs) or (tuple(TensorSpec.from_json(s) for s in job.inputs) if job.inputs else None)
    task = options.task or job.task
    ref = job.reference
    if ref.kind == "engine":  # an engine records no spec we can read without TensorRT: the user gives it
        if not specs:
            raise BenchError(f"{ref.path} is a TensorRT engine; pass --input NAME:SHAPE:DTYPE for each of its inputs")
        return Model(None, specs, task or "generic", ref.path, "engine")
    try:
        if ref.kind == "aoti":  # its inputs come from its sidecar
            from export.aoti.package import load_aoti_model

            return load_aoti_model(ref.path, specs, task)
        return load_model(ref.path, specs, task=task, trust_pickle=options.trust_pickle)
    except InputError as exc:
        raise BenchError(f"{job.name}: {exc}") from None
