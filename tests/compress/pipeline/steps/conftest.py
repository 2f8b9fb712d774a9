import pytest

from compress.load.text_corpus import calibration_texts

FAST = ["--batch", "2", "--threads", "1", "--quiet", "--seq-len", "32"]  # CLI flags that keep a run on a small BERT to seconds


@pytest.fixture(scope="module")
def distill_text(tmp_path_factory):
    """96 lines of built-in text: unlabelled distillation data for a small BERT."""
    path = tmp_path_factory.mktemp("data") / "distill.txt"
    path.write_text("\n".join(calibration_texts()[:96]) + "\n")
    return path
