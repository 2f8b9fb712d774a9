import json

import numpy as np
import pytest

from compress.core.errors import InputError
from compress.load.data import default_data, load_data_file, synthetic, tokenize


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- .npz -------------------------------------------------------------------------------------

def test_load_data_file_reads_npz_by_input_name_with_labels(tmp_path, digits_ts_model, digits_data):
    x, y = digits_data["x_test"][:40], digits_data["y_test"][:40]
    path = tmp_path / "named.npz"
    np.savez(path, x=x, labels=y)
    data = load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)
    assert [b["x"].shape[0] for b in data.batches] == [16, 16, 8]
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in data.batches]), x)
    np.testing.assert_array_equal(data.labels, y)
    assert data.num_samples == 40
    assert "named.npz" in data.source and "40" in data.source


def test_load_data_file_accepts_single_unnamed_array_when_model_has_one_input(tmp_path, digits_ts_model, digits_data):
    x = digits_data["x_train"][:10]
    path = tmp_path / "single.npz"
    np.savez(path, x)  # stored as arr_0
    data = load_data_file(path, digits_ts_model, batch_size=4, seq_len=8)
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in data.batches]), x)
    assert data.labels is None


def test_load_data_file_keeps_the_first_samples_and_labels_when_samples_given(tmp_path, digits_ts_model, digits_data):
    path = tmp_path / "many.npz"
    np.savez(path, x=digits_data["x_test"][:30], labels=digits_data["y_test"][:30])
    data = load_data_file(path, digits_ts_model, batch_size=16, seq_len=8, samples=20)
    assert data.num_samples == 20
    np.testing.assert_array_equal(data.labels, digits_data["y_test"][:20])


def test_load_data_file_raises_input_error_when_npz_labels_count_differs(tmp_path, digits_ts_model, digits_data):
    # 5 samples but 3 labels: must be refused when read, not crash later in the retention metric.
    path = tmp_path / "fewlabels.npz"
    np.savez(path, x=digits_data["x_test"][:5], labels=digits_data["y_test"][:3])
    with pytest.raises(InputError, match="fewlabels.npz"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_record_when_npz_shape_wrong(tmp_path, digits_ts_model):
    path = tmp_path / "shape.npz"
    np.savez(path, x=np.zeros((3, 1, 8, 7), np.float32))
    with pytest.raises(InputError, match=r"shape\.npz record 0: input x has shape \[1, 8, 7\]"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_record_when_npz_dtype_wrong(tmp_path, digits_ts_model):
    path = tmp_path / "ints.npz"
    np.savez(path, x=np.zeros((3, 1, 8, 8), np.int64))
    with pytest.raises(InputError, match=r"ints\.npz record 0: input x is int64, the model expects float32"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_record_when_npz_holds_nan(tmp_path, digits_ts_model, digits_data):
    x = digits_data["x_test"][:6].copy()
    x[4, 0, 3, 3] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, x=x)
    with pytest.raises(InputError, match=r"nan\.npz record 4: input x holds NaN"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_when_npz_is_empty(tmp_path, digits_ts_model):
    path = tmp_path / "none.npz"
    np.savez(path, x=np.zeros((0, 1, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"none\.npz holds no records"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_when_npz_key_missing(tmp_path, digits_ts_model):
    path = tmp_path / "keys.npz"
    np.savez(path, a=np.zeros((2, 1, 8, 8), np.float32), b=np.zeros((2, 1, 8, 8), np.float32))
    with pytest.raises(InputError, match=r"keys\.npz lacks arrays for inputs \['x'\]"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_when_npz_truncated(tmp_path, digits_ts_model, digits_data):
    whole = tmp_path / "whole.npz"
    np.savez(whole, x=digits_data["x_test"][:20])
    path = tmp_path / "broken.npz"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # a copy cut short
    with pytest.raises(InputError, match=r"broken\.npz"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


# --- .jsonl -----------------------------------------------------------------------------------

def test_load_data_file_reads_jsonl_input_arrays_with_labels(tmp_path, digits_ts_model, digits_data):
    x, y = digits_data["x_test"][:5], digits_data["y_test"][:5]
    path = _write_jsonl(tmp_path / "rows.jsonl", [{"x": xi.tolist(), "label": int(yi)} for xi, yi in zip(x, y)])
    data = load_data_file(path, digits_ts_model, batch_size=2, seq_len=8)
    got = np.concatenate([b["x"] for b in data.batches])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(data.labels, y)


def test_load_data_file_reads_jsonl_text_with_tokenizer(tmp_path, minilm_model):
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": "first sentence here"}, {"text": "a second one", "label": 1}])
    with pytest.raises(InputError, match="label every record or none"):
        load_data_file(path, minilm_model, batch_size=8, seq_len=16)
    path = _write_jsonl(tmp_path / "text2.jsonl", [{"text": "first sentence here"}, {"text": "a second one"}])
    data = load_data_file(path, minilm_model, batch_size=8, seq_len=16)
    expected = tokenize(minilm_model, ["first sentence here", "a second one"], 16)
    for name in minilm_model.input_names:
        np.testing.assert_array_equal(data.batches[0][name], expected[name])


def test_load_data_file_raises_input_error_naming_file_and_line_when_jsonl_shape_wrong(tmp_path, digits_ts_model):
    path = _write_jsonl(tmp_path / "bad_shape.jsonl", [{"x": np.zeros((1, 8, 8)).tolist()}, {"x": np.zeros((1, 8, 7)).tolist()}])
    with pytest.raises(InputError, match=r"bad_shape\.jsonl record 2: input x has shape \[1, 8, 7\]"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_line_when_jsonl_holds_nan(tmp_path, digits_ts_model):
    bad = np.zeros((1, 8, 8))
    bad[0, 0, 0] = np.nan
    path = _write_jsonl(tmp_path / "nan.jsonl", [{"x": bad.tolist()}])  # json writes NaN
    with pytest.raises(InputError, match=r"nan\.jsonl record 1: input x holds NaN"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_line_when_jsonl_value_not_numeric(tmp_path, digits_ts_model):
    path = _write_jsonl(tmp_path / "strings.jsonl", [{"x": np.zeros((1, 8, 8)).tolist()}, {"x": "a picture of a seven"}])
    with pytest.raises(InputError, match=r"strings\.jsonl (line|record) 2"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_naming_file_and_line_when_jsonl_dtype_wrong(tmp_path, minilm_model):
    # Token ids given as fractions: .npz refuses float data for int64 inputs, .jsonl must not truncate it silently.
    ok = {"input_ids": [101, 2023, 102], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1]}
    bad = {"input_ids": [101.7, 2023.2, 102.9], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1]}
    path = _write_jsonl(tmp_path / "float_ids.jsonl", [ok, bad])
    with pytest.raises(InputError, match=r"float_ids\.jsonl (line|record) 2"):
        load_data_file(path, minilm_model, batch_size=8, seq_len=16)


def test_load_data_file_reads_jsonl_token_arrays_when_model_has_several_inputs(tmp_path, minilm_model):
    rows = [{"input_ids": [101, 2023, 102], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 1]},
            {"input_ids": [101, 7592, 102], "token_type_ids": [0, 0, 0], "attention_mask": [1, 1, 0]}]
    data = load_data_file(_write_jsonl(tmp_path / "ids.jsonl", rows), minilm_model, batch_size=8, seq_len=16)
    for name in minilm_model.input_names:
        assert data.batches[0][name].dtype == np.int64
        np.testing.assert_array_equal(data.batches[0][name], np.array([r[name] for r in rows]))


def test_load_data_file_raises_input_error_naming_line_when_jsonl_not_json(tmp_path, digits_ts_model):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps({"x": np.zeros((1, 8, 8)).tolist()}) + "\n{not json\n")
    with pytest.raises(InputError, match=r"broken\.jsonl line 2 is not JSON"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_when_jsonl_lacks_input(tmp_path, digits_ts_model):
    path = _write_jsonl(tmp_path / "lacks.jsonl", [{"pixels": [1, 2]}])
    with pytest.raises(InputError, match=r"lacks\.jsonl line 1 lacks \['x'\]"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


def test_load_data_file_raises_input_error_when_jsonl_has_text_but_model_has_no_tokenizer(tmp_path, digits_ts_model):
    path = _write_jsonl(tmp_path / "text.jsonl", [{"text": "hello"}])
    with pytest.raises(InputError, match="no tokenizer"):
        load_data_file(path, digits_ts_model, batch_size=16, seq_len=8)


# --- .txt -------------------------------------------------------------------------------------

def test_load_data_file_tokenizes_txt_lines_skipping_blank_ones(tmp_path, minilm_model):
    lines = ["The cat sat on the mat.", "Compilers turn source into machine code.", "A third, rather longer line of text."]
    path = tmp_path / "lines.txt"
    path.write_text("\n".join([lines[0], "", "   ", lines[1], lines[2]]) + "\n")
    data = load_data_file(path, minilm_model, batch_size=2, seq_len=12)
    assert data.num_samples == 3 and data.labels is None
    assert set(data.batches[0]) == {"input_ids", "token_type_ids", "attention_mask"}
    assert data.batches[0]["input_ids"].shape == (2, 12) and data.batches[0]["input_ids"].dtype == np.int64
    enc = minilm_model.tokenizer(lines, padding="max_length", truncation=True, max_length=12, return_tensors="np")
    np.testing.assert_array_equal(np.concatenate([b["input_ids"] for b in data.batches]), enc["input_ids"])
    np.testing.assert_array_equal(np.concatenate([b["attention_mask"] for b in data.batches]), enc["attention_mask"])


def test_load_data_file_raises_input_error_when_txt_empty(tmp_path, minilm_model):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n")
    with pytest.raises(InputError, match=r"empty\.txt holds no records"):
        load_data_file(path, minilm_model, batch_size=2, seq_len=12)


def test_load_data_file_raises_input_error_when_txt_given_to_model_without_tokenizer(tmp_path, digits_ts_model):
    path = tmp_path / "lines.txt"
    path.write_text("some text\n")
    with pytest.raises(InputError, match="no tokenizer"):
        load_data_file(path, digits_ts_model, batch_size=2, seq_len=12)


def test_load_data_file_raises_input_error_when_txt_not_utf8(tmp_path, minilm_model):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café au lait\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.txt is not UTF-8"):
        load_data_file(path, minilm_model, batch_size=2, seq_len=12)


def test_load_data_file_raises_input_error_when_missing_or_unknown_type(tmp_path, digits_ts_model):
    with pytest.raises(InputError, match="does not exist"):
        load_data_file(tmp_path / "missing.npz", digits_ts_model, batch_size=2, seq_len=8)
    csv = tmp_path / "data.csv"
    csv.write_text("1,2,3\n")
    with pytest.raises(InputError, match="unknown type '.csv'"):
        load_data_file(csv, digits_ts_model, batch_size=2, seq_len=8)


# --- built-in data ----------------------------------------------------------------------------

def test_synthetic_uses_different_inputs_for_calibration_and_evaluation(digits_ts_model):
    calib = synthetic(digits_ts_model, "calibration", samples=10, batch_size=4, seq_len=8)
    evaluation = synthetic(digits_ts_model, "evaluation", samples=10, batch_size=4, seq_len=8)
    assert [b["x"].shape for b in calib.batches] == [(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)]
    assert calib.num_samples == evaluation.num_samples == 10
    assert not np.array_equal(calib.batches[0]["x"], evaluation.batches[0]["x"])


def test_default_data_uses_builtin_text_when_model_has_tokenizer(minilm_model):
    data = default_data(minilm_model, "evaluation", samples=5, batch_size=2, seq_len=16)
    assert data.num_samples == 5
    assert data.batches[0]["input_ids"].shape == (2, 16)
    assert "pydoc_data" in data.source


def test_load_data_file_refuses_npz_labels_under_another_name(tmp_path, digits_ts_model, digits_data):
    path = tmp_path / "d.npz"
    np.savez(path, x=digits_data["x_test"][:8], y=digits_data["y_test"][:8])
    with pytest.raises(InputError, match=r"\['y'\].*save labels as 'labels'"):
        load_data_file(path, digits_ts_model, batch_size=4, seq_len=8)


def test_load_data_file_refuses_jsonl_label_under_another_name(tmp_path, minilm_model):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a sentence", "y": 1}) + "\n")
    with pytest.raises(InputError, match=r"line 1 has fields \['y'\].*\"label\""):
        load_data_file(path, minilm_model, batch_size=4, seq_len=8)


def test_latency_batches_are_exactly_the_batch_size_beyond_the_builtin_texts(minilm_model):
    from compress.load.data import latency_batches
    from compress.load.text_corpus import evaluation_texts

    size = len(evaluation_texts()) // 2 + 1  # four batches need twice the texts there are
    batches = latency_batches(minilm_model, (1, size), seq_len=8)
    assert [len(b["input_ids"]) for b in batches[size]] == [size] * 4 and [len(b["input_ids"]) for b in batches[1]] == [1] * 4
    assert len({b["input_ids"].tobytes() for b in batches[1]}) == 4  # four different inputs, not one cached


def test_latency_batches_of_a_model_without_tokenizer_are_exact(digits_ts_model):
    from compress.load.data import latency_batches

    batches = latency_batches(digits_ts_model, (3,), seq_len=8)
    assert [len(b["x"]) for b in batches[3]] == [3] * 4


def test_latency_batches_are_cut_from_the_held_out_data_in_its_real_shapes():
    from compress.core.model import Model
    from compress.core.spec import TensorSpec
    from compress.load.data import Dataset, latency_batches

    model = Model(None, (TensorSpec("x", ("batch", 3, "height", "width")),), "generic", None, "onnx")
    images = np.arange(5 * 3 * 48 * 320, dtype=np.float32).reshape(5, 3, 48, 320)
    held_out = Dataset([{"x": images[:3]}, {"x": images[3:]}], None, "lines.npz")
    cut = latency_batches(model, (1, 4), 8, held_out)
    assert [b["x"].shape for b in cut[4]] == [(4, 3, 48, 320)] * 4  # not the spec's guess of 8x8 pixels
    np.testing.assert_array_equal(cut[4][1]["x"], images[[4, 0, 1, 2]])  # cycling through all five samples
    guessed = latency_batches(model, (1,), 8)
    assert guessed[1][0]["x"].shape == (1, 3, 8, 8)
