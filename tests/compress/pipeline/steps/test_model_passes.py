"""prune → distill → INT8 → export through the CLI and the pipeline: each stage measured, the pruned
model saved as a directory the loaders open again, an interrupted distillation resumed with
nothing lost, and bad flags refused with one line."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from compress.cli.main import main
from compress.load.data import tokenize
from compress.load.loaders import load_model
from compress.passes.distill import DistillConfig
from compress.passes.prune_heads import HeadPruneConfig
from compress.pipeline.options import RunOptions
from compress.pipeline.run import run
from export.onnx.export import OnnxExportConfig
from export.onnx.session import make_session, run_session
from tests.compress.pipeline.steps.conftest import FAST


def test_cli_prune_distill_int8_reports_every_stage_and_saves_a_loadable_model(tiny_bert, distill_text, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "heads=0.5,ffn=0.5", "--distill", str(distill_text),
                                       "--distill-steps", "4", "--json", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in json.loads(result.stdout)["results"]]
    assert names == ["pytorch-fp32", "pytorch-pruned", "pytorch-pruned-distilled", "onnx-fp32", "onnx-int8"]
    assert not (tmp_path / "out.checkpoints").exists()  # a finished run leaves nothing to resume
    saved = load_model(out / "model")
    assert saved.hf_model.config.pruned_heads and saved.hf_model.config.intermediate_size == 32
    # the saved directory is the model that was exported: same answers as model.onnx
    batch = tokenize(saved, ["a short test sentence", "def f(): pass"], 16)
    with_onnx = run_session(make_session(out / "model.onnx", 1, spin=False), batch)[0]
    np.testing.assert_allclose(saved.forward_numpy(batch)[0], with_onnx, atol=1e-4)


def test_cli_layer_removal_with_the_attention_loss_compares_each_kept_layers_attention(tiny_bert, distill_text, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "layers=1", "--distill", str(distill_text), "--distill-attention", "1",
                                       "--distill-steps", "3", "--no-int8", "--json", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    stage = next(s for s in json.loads((out / "report.json").read_text())["model_passes"]["stages"] if s["step"] == "DistillConfig")
    assert stage["attention_pairs"] == [["model.encoder.layer.1.attention.self", "model.encoder.layer.0.attention.self"]]
    assert stage["loss"]["attention"]["final"] >= 0


def test_cli_resume_without_distill_is_refused_with_one_line(tiny_bert, tmp_path):
    result = CliRunner().invoke(main, [str(tiny_bert), "--resume", "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 1 and result.stderr.startswith("error: --resume continues a distillation")
    assert not (tmp_path / "o").exists()


def test_cli_refuses_distill_on_the_eval_file(tiny_bert, distill_text, tmp_path):
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "ffn=0.5", "--distill", str(distill_text), "--eval", str(distill_text),
                                       "--distill-steps", "2", "--out", str(tmp_path / "o"), *FAST])
    assert result.exit_code == 1 and "same file" in result.stderr and not (tmp_path / "o").exists()


def _run(model_path, out, distill_text, resume=False):
    recipe = [HeadPruneConfig(heads=0.5, ffn=0.5, importance="magnitude"),
              DistillConfig(max_steps=8, checkpoint_every=2, batch_size=8), OnnxExportConfig()]
    options = RunOptions(out_dir=out, distill=distill_text, batch_sizes=(2,), seq_len=32, threads=1, min_seconds=0.01,
                         eval_samples=8, resume=resume)
    return run(load_model(model_path), recipe, options)


def test_run_interrupted_in_distillation_resumes_to_the_same_weights(tiny_bert, distill_text, tmp_path):
    _run(tiny_bert, tmp_path / "straight", distill_text)
    calls = []

    def ctrl_c_in_fifth_training_step(module, _args, _out):
        if module.training and type(module).__name__ == "BertModel":
            calls.append(1)
            if len(calls) == 5:
                os.kill(os.getpid(), signal.SIGINT)

    handle = torch.nn.modules.module.register_module_forward_hook(ctrl_c_in_fifth_training_step)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(tiny_bert, tmp_path / "resumed", distill_text)
    finally:
        handle.remove()
    assert not (tmp_path / "resumed").exists()  # nothing half-written
    assert (tmp_path / "resumed.checkpoints" / "step-000005").is_dir()  # the step in flight was finished and saved
    result = _run(tiny_bert, tmp_path / "resumed", distill_text, resume=True)
    stage = result.report["model_passes"]["stages"][1]
    assert stage["resumed_from_step"] == 5 and stage["steps"] == 8
    straight, resumed = (load_file(str(tmp_path / d / "model" / "model.safetensors")) for d in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_a_pt2_model_prunes_and_distills_to_the_end(digits_files, tmp_path):
    """A torch.export module refuses train() and eval(); distillation used to end in that traceback."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(digits_files["pt2"]), "--prune", "channels=0.25", "--distill", str(digits_files["calib"]),
                                       "--distill-steps", "5", "--distill-batch", "8", "--no-int8", "--out", str(out),
                                       "--batch", "1", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, (result.output, result.exception)
    report = json.loads((out / "report.json").read_text())
    assert report["model_passes"]["stages"][-1]["steps"] == 5
    assert [r["name"] for r in report["results"]][:3] == ["pytorch-fp32", "pytorch-pruned", "pytorch-pruned-distilled"]


def test_a_pruned_model_is_judged_end_to_end_against_the_original(tiny_bert, tmp_path):
    """The INT8 step is checked against the pruned model it was given; what pruning cost is checked
    too, from the last row back to the original: outside the tolerance it is one warning and exit 3."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(tiny_bert), "--prune", "heads=0.5,ffn=0.5,importance=magnitude", "--max-drop", "0.001%",
                                       "--no-int8", "--out", str(out), *FAST])
    assert result.exit_code == 3, result.output
    tolerance = json.loads((out / "report.json").read_text())["tolerance"]
    end_to_end = tolerance["rows"]["onnx-fp32, end to end"]
    assert end_to_end["against"] == "pytorch-fp32" and end_to_end["drop"] > 1e-5 and end_to_end["met"] is False
    assert len([ln for ln in result.stderr.splitlines() if ln.startswith("warning:") and "end to end" in ln]) == 1
    assert "onnx-fp32, end to end dropped" in result.stderr.splitlines()[-1]
