"""compress build-engine --aoti: an AOTInductor package compiled here from a torch.export program,
described by its sidecar (inputs included), never clobbering what it did not write, and refused
with the fix for inputs it cannot compile."""

from __future__ import annotations

import json

import pytest
import torch

from export.aoti.package import aoti_file_name, load_aoti_model, read_aoti_metadata
from tests.compress.cli.test_compress_command import assert_one_line_error, invoke
from tests.export.aoti.int8_mlp import NEEDS_AOTI, int8_mlp_program


@pytest.fixture(scope="module")
def int8_program(tmp_path_factory):
    program = int8_mlp_program(24, 32, 5, seed=1)
    path = tmp_path_factory.mktemp("program") / "model.int8.pt2"
    torch.export.save(program, str(path))
    return path, program


@pytest.fixture(scope="module")
def built(int8_program, tmp_path_factory):
    path, _ = int8_program
    out = tmp_path_factory.mktemp("built") / "engines"  # created by the command
    result = invoke(["build-engine", "--aoti", path, "--out", out])
    return out, result


@NEEDS_AOTI[0]
@NEEDS_AOTI[1]
class TestBuilt:
    def test_build_engine_aoti_writes_the_package_and_a_sidecar_describing_its_inputs(self, built, int8_program):
        out, result = built
        assert result.exit_code == 0, result.output + result.stderr
        package = out / aoti_file_name("model.int8", "cpu")
        meta = read_aoti_metadata(package)
        assert meta["device"] == "cpu" and meta["min_cosine"] >= 0.99 and meta["shapes_checked"] == 2
        assert [s["name"] for s in meta["inputs"]] == [s.name for s in load_aoti_model(package).inputs]
        assert meta["compress_ops"] and all(op.startswith("compress.int8_linear_packed") or op.startswith("compress.quantize")
                                            for op in meta["compress_ops"])
        assert package.name in result.output and "lowest row cosine" in result.output

    def test_the_package_loads_as_a_model_and_answers_as_the_program(self, built, int8_program):
        out, _ = built
        _, program = int8_program
        model = load_aoti_model(out / aoti_file_name("model.int8", "cpu"))
        x = torch.randn(9, 24)
        with torch.inference_mode():
            torch.testing.assert_close(model.module(x), program.module()(x), rtol=1e-5, atol=1e-4)

    def test_a_second_build_is_refused_without_force_and_replaces_with_it(self, built, int8_program):
        out, _ = built
        path, _ = int8_program
        package = out / aoti_file_name("model.int8", "cpu")
        assert_one_line_error(invoke(["build-engine", "--aoti", path, "--out", out]), "already exists; pass --force")
        sidecar = out / (package.name + ".json")
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "shapes_checked": -1}))  # marks the old one
        result = invoke(["build-engine", "--aoti", path, "--out", out, "--force"])
        assert result.exit_code == 0, result.output + result.stderr
        assert read_aoti_metadata(package)["shapes_checked"] == 2

    def test_force_does_not_replace_a_file_compress_did_not_write(self, int8_program, tmp_path):
        path, _ = int8_program
        foreign = tmp_path / aoti_file_name("model.int8", "cpu")
        foreign.write_bytes(b"the user's own notes")
        assert_one_line_error(invoke(["build-engine", "--aoti", path, "--out", tmp_path, "--force"]),
                              "is not an AOTInductor package, so --force will not replace it")
        assert foreign.read_bytes() == b"the user's own notes"

    def test_a_package_given_as_the_model_is_refused_with_the_fix(self, built):
        out, _ = built
        package = out / aoti_file_name("model.int8", "cpu")
        assert_one_line_error(invoke(["build-engine", "--aoti", package, "--out", out / "again"]),
                              "is an AOTInductor package", "give the program it was compiled from")


def test_tensorrt_options_with_aoti_are_refused(int8_program, tmp_path):
    path, _ = int8_program
    assert_one_line_error(invoke(["build-engine", "--aoti", path, "--shapes", "batch=1:8:32", "--out", tmp_path]),
                          "--shapes configures TensorRT engines; drop it with --aoti")
    assert_one_line_error(invoke(["build-engine", "--aoti", path, "--opt-level", "5", "--out", tmp_path]),
                          "--opt-level configures TensorRT engines; drop it with --aoti")
    assert list(tmp_path.iterdir()) == []


def test_a_cuda_package_of_a_cpu_packed_program_is_refused_with_the_route_that_works(int8_program, tmp_path):
    path, _ = int8_program
    assert_one_line_error(invoke(["build-engine", "--aoti", path, "--device", "cuda", "--out", tmp_path]),
                          "packed for the CPU kernels", "--target aoti")


def test_aoti_needs_a_pt2_program(digits_onnx, tmp_path):
    assert_one_line_error(invoke(["build-engine", "--aoti", digits_onnx, "--out", tmp_path]), "is not a torch.export program (.pt2)")
