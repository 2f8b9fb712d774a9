"""Task metrics: each built-in on outputs whose answer is known, the drop in its unit, and the
user's own metric by module:function."""

from __future__ import annotations

import numpy as np
import pytest

from bench.measure.task_metrics import BUILTIN, CtcText, builtin_metric, ctc_greedy_decode, default_metric, resolve_metric
from compress.core.errors import InputError


def _onehot_sequence(classes: list[int], num_classes: int = 5) -> np.ndarray:
    out = np.full((len(classes), num_classes), -5.0, dtype=np.float32)
    out[np.arange(len(classes)), classes] = 5.0
    return out


def test_ctc_greedy_decoding_collapses_repeats_and_drops_blanks():
    logits = np.stack([_onehot_sequence([1, 1, 0, 1, 2, 2, 0, 0, 3]), _onehot_sequence([0, 0, 0, 0, 0, 0, 0, 0, 4])])
    assert ctc_greedy_decode(logits) == [(1, 1, 2, 3), (4,)]
    assert CtcText(["a", "b", "c", "d"]).texts(logits) == ["aabc", "d"]


def test_ctc_exact_and_cer_against_text_labels():
    logits = np.stack([_onehot_sequence([1, 0, 2, 3]), _onehot_sequence([1, 2, 0, 2])])  # "abc", "abb"
    labels = np.array(["abc", "abc"])
    charset = ["a", "b", "c", "d"]
    exact, cer = builtin_metric("ctc-exact", charset), builtin_metric("cer", charset)
    assert exact.value(logits, logits, labels) == 0.5
    assert cer.value(logits, logits, labels) == pytest.approx(1 / 6)  # one substitution in six characters
    worse = np.stack([_onehot_sequence([1, 0, 2, 3]), _onehot_sequence([4, 0, 0, 0])])  # "abc", "d"
    scored = cer.score(logits, worse, labels)
    assert scored["drop"] == pytest.approx(3 / 6 - 1 / 6, abs=1e-6) and scored["drop_unit"] == "points"  # lower is better: a positive drop


def test_ctc_without_labels_scores_agreement_with_the_original_reading():
    ref = np.stack([_onehot_sequence([1, 0, 2]), _onehot_sequence([3, 3, 0])])
    out = np.stack([_onehot_sequence([1, 0, 2]), _onehot_sequence([3, 0, 3])])
    assert builtin_metric("ctc-exact").value(ref, out, None) == 0.5


def test_text_labels_without_a_charset_are_refused_in_one_line():
    ref = np.stack([_onehot_sequence([1, 0, 2])])
    with pytest.raises(InputError, match="--charset"):
        builtin_metric("ctc-exact").value(ref, ref, np.array(["ab"]))


def test_perplexity_of_certain_predictions_is_one_and_its_drop_is_relative():
    vocab, ids = 6, np.array([[1, 2, 3, 4], [2, 3, 4, -100]])
    logits = np.full((2, 4, vocab), -30.0)
    for b in range(2):
        for t in range(3):
            if ids[b, t + 1] >= 0:
                logits[b, t, ids[b, t + 1]] = 30.0  # position t predicts label t + 1
    ppl = builtin_metric("perplexity")
    assert ppl.value(logits, logits, ids) == pytest.approx(1.0)
    uniform = np.zeros_like(logits)
    assert ppl.value(logits, uniform, ids) == pytest.approx(vocab)
    assert ppl.score(logits, uniform, ids)["drop"] == pytest.approx(vocab - 1.0)  # (6 - 1) / 1, relative


def test_top5_agreement_counts_the_original_answer_among_the_five_best():
    ref = np.eye(8, dtype=np.float32)[[0, 1]]
    out = np.array([[0.1, 0, 0, 0, 0, 0.5, 0.4, 0.3], [0, 0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]], dtype=np.float32)
    assert builtin_metric("top5").value(ref, out, None) == 0.5 and builtin_metric("top1").value(ref, out, None) == 0.0


def test_defaults_follow_the_task_and_labels():
    assert default_metric("embedding", None).name == "cosine"
    assert default_metric("classification", None).name == "top1"
    assert default_metric("classification", np.zeros(3)).name == "accuracy"
    assert default_metric("generic", None).name == "relative-error"


def test_a_users_metric_by_module_and_function(tmp_path, monkeypatch):
    (tmp_path / "my_metrics.py").write_text("def mean_output(reference, outputs, labels):\n    return float(outputs.mean())\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    metric = resolve_metric("my_metrics:mean_output", "generic", None)
    assert metric.value(np.zeros(4), np.ones(4), None) == 1.0
    with pytest.raises(InputError, match="has no function"):
        resolve_metric("my_metrics:missing", "generic", None)


def test_unknown_names_and_missing_labels_are_one_line_errors():
    with pytest.raises(InputError, match="unknown metric 'bleu'"):
        resolve_metric("bleu", "generic", None)
    with pytest.raises(InputError, match="needs labels"):
        builtin_metric("accuracy").value(np.eye(2), np.eye(2), None)
    assert "ctc-exact" in BUILTIN
