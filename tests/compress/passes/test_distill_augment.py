import numpy as np
import pytest

from compress.passes.distill_augment import AUGMENT_BELOW, MAX_COPIES, augment_tokens, default_copies

CLS, SEP, PAD, MASK = 101, 102, 0, 103


def _tokens(count=50, length=12, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, length + 1, size=count)
    ids = np.full((count, length), PAD)
    mask = np.zeros((count, length), np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = [CLS, *rng.integers(1000, 1100, size=n - 2), SEP]
        mask[i, :n] = 1
    return {"input_ids": ids, "token_type_ids": np.zeros_like(ids), "attention_mask": mask}


def test_copies_follow_the_samples_with_a_share_of_real_tokens_replaced_and_nothing_else():
    data = _tokens()
    out = augment_tokens(data, 3, mask_id=MASK, special_ids={CLS, SEP, PAD, MASK}, rate=0.2, seed=1)
    assert list(out) == list(data) and all(len(v) == 4 * 50 for v in out.values())
    np.testing.assert_array_equal(out["input_ids"][:50], data["input_ids"])  # the originals come first, unchanged
    np.testing.assert_array_equal(out["attention_mask"], np.tile(data["attention_mask"], (4, 1)))
    real = (data["attention_mask"] == 1) & ~np.isin(data["input_ids"], [CLS, SEP])
    for copy in np.split(out["input_ids"][50:], 3):
        np.testing.assert_array_equal(copy[~real], data["input_ids"][~real])  # special tokens and padding untouched
        changed = copy[real] != data["input_ids"][real]
        assert 0.1 < changed.mean() < 0.3  # about the rate (a substitute can draw the same token)
        assert (copy[real] == MASK).mean() > 0.05  # about half of the changes are the mask token
        assert np.isin(copy[real][copy[real] != MASK], data["input_ids"][real]).all()  # substitutes come from the data
    again = augment_tokens(data, 3, mask_id=MASK, special_ids={CLS, SEP, PAD, MASK}, rate=0.2, seed=1)
    np.testing.assert_array_equal(again["input_ids"], out["input_ids"])  # the same copies from the same seed


def test_small_data_is_brought_up_to_the_threshold_and_large_data_left_alone():
    assert default_copies(AUGMENT_BELOW) == 0 and default_copies(5000) == 0
    assert default_copies(500) == 3 and default_copies(10) == MAX_COPIES
    assert default_copies(1999) == 1


def test_no_copies_returns_the_data_as_given():
    data = _tokens()
    assert augment_tokens(data, 0, mask_id=MASK, special_ids=set()) is data


@pytest.mark.parametrize("copies", [1, 2])
def test_without_a_mask_token_every_change_is_a_substitution(copies):
    data = _tokens()
    out = augment_tokens(data, copies, mask_id=None, special_ids={CLS, SEP, PAD}, rate=0.3)
    assert not (out["input_ids"] == MASK).any()
