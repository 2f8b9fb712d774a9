"""Each file format that can carry a pickle, or point at Python code, with a hostile one planted:
nothing from the file runs (a marker file the payload would create never appears), the error is one
line naming the file, and the input is unchanged (issue 15, case 1 and its "check every other format").
The .pt2 carrier is in tests/compress/load/test_no_code_unpickling.py."""

from __future__ import annotations

import hashlib
import json
import pathlib
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from tests.compress.cli.test_compress_command import FAST, assert_one_line_error, invoke


class _TouchOnLoad:
    """Unpickling this calls Path.touch(marker): code from the file, as an attacker would plant it."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _tree_sha(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]:
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "code-ran"


def test_hf_bin_weights_with_a_hostile_pickle_are_refused(tiny_bert, tmp_path, marker):
    from safetensors.torch import load_file

    model = tmp_path / "bert"
    shutil.copytree(tiny_bert, model)
    weights = load_file(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    torch.save({**weights, "extra": _TouchOnLoad(marker)}, model / "pytorch_model.bin")
    before = _tree_sha(model)
    result = invoke([model, "--no-int8", "--seq-len", "32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, ".bin weights file holds a pickle that would run code", "safetensors")
    assert not marker.exists() and not (tmp_path / "out").exists() and _tree_sha(model) == before


@pytest.mark.parametrize("config_file, key", [("config.json", "AutoModel"), ("tokenizer_config.json", "AutoTokenizer")])
def test_hf_auto_map_to_code_in_the_directory_is_not_run(tiny_bert, tmp_path, marker, config_file, key):
    model = tmp_path / "bert"
    shutil.copytree(tiny_bert, model)
    (model / "evil.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
                                   "from transformers import BertModel as Evil, BertTokenizer as EvilTok\n")
    config = json.loads((model / config_file).read_text())
    config["auto_map"] = {key: "evil.Evil" if key == "AutoModel" else ["evil.EvilTok", None]}
    (model / config_file).write_text(json.dumps(config))
    result = invoke([model, "--no-int8", "--seq-len", "32", "--out", tmp_path / "out", *FAST])
    assert result.exit_code == 0, result.output  # transformers loads the BERT it knows; trust_remote_code stays off
    assert not marker.exists()


@pytest.mark.parametrize("member", ["constants.pkl", "data.pkl"])
def test_torchscript_with_a_hostile_pickle_member_is_refused(digits_files, tmp_path, marker, member):
    path = tmp_path / "hostile.ts"
    payload = pickle.dumps(_TouchOnLoad(marker), protocol=2)
    with zipfile.ZipFile(digits_files["torchscript"]) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, payload if item.filename.endswith("/" + member) else zin.read(item.filename))
    before = _tree_sha(path)
    result = invoke([path, "--input", "x:1x1x8x8:float32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "hostile.ts is a corrupt or tampered TorchScript archive", "nothing in it was run")
    assert not marker.exists() and not (tmp_path / "out").exists() and _tree_sha(path) == before


def test_npz_with_pickled_object_arrays_is_refused(digits_files, tmp_path, marker):
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.array([_TouchOnLoad(marker)], dtype=object))
    result = invoke([digits_files["pt2"], "--calib", calib, "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "calib.npz is not a readable .npz", "allow_pickle=False")
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_pickled_module_is_refused_without_trust_pickle_and_runs_nothing(tmp_path, marker):
    path = tmp_path / "model.pt"
    torch.save(_TouchOnLoad(marker), path)
    result = invoke([path, "--input", "x:1x3:float32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "loading it runs code from the file", "--trust-pickle")
    assert not marker.exists()


def test_a_hostile_pickle_loaded_with_trust_pickle_is_named_for_what_it_is(tmp_path, marker):
    path = tmp_path / "model.pt"
    torch.save(_TouchOnLoad(marker), path)
    result = invoke([path, "--trust-pickle", "--input", "x:1x3:float32", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "was unpickled with --trust-pickle, which ran code from it", "NoneType", "may be hostile")
    assert marker.exists()  # the user opted in: the code ran, and the message says so rather than "corrupt"


def test_a_sequence_longer_than_the_model_takes_is_refused_in_one_line(tiny_bert, tmp_path):
    result = invoke([tiny_bert, "--no-int8", "--seq-len", "128", "--out", tmp_path / "out", *FAST])
    assert_one_line_error(result, "--seq-len 128 is longer than the 64 positions", "--seq-len 64 or less")
    assert not (tmp_path / "out").exists()
