import torch

from compress.passes import teacher_cache
from compress.passes.teacher_cache import OUTPUT, TeacherCache

NAMES = [OUTPUT, "encoder.layer.0"]


def _tensors(batch, length, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, generator=gen), torch.randn(batch, length, 8, generator=gen)]  # logits, one hidden state


def test_stored_targets_come_back_as_they_were_first_used_trimmed_to_the_batch():
    cache = TeacherCache(samples=10, sequence=6)
    index = torch.tensor([7, 2, 5])
    assert cache.get(index, 4, NAMES) is None
    used = cache.put(index, NAMES, _tensors(3, 4), 4)
    again = cache.get(index, 4, NAMES)
    assert again is not None and [t.shape for t in again] == [(3, 3), (3, 4, 8)]
    for first, second in zip(used, again):
        assert torch.equal(first, second.to(first.dtype))  # the first use is already the stored (float16) value
    assert again[1].dtype == torch.float16 and again[0].dtype == torch.float32  # logits kept in full precision
    shorter = cache.get(torch.tensor([2]), 2, NAMES)
    assert torch.equal(shorter[1], again[1][1:2, :2])
    assert cache.report()["steps_from_cache"] == 2 and cache.report()["steps_computing_teacher"] == 1


def test_a_batch_with_any_sample_never_stored_is_a_miss():
    cache = TeacherCache(samples=10, sequence=6)
    cache.put(torch.tensor([0, 1]), NAMES, _tensors(2, 6), 6)
    assert cache.get(torch.tensor([1, 3]), 6, NAMES) is None
    assert cache.get(torch.tensor([1, 0]), 6, NAMES) is not None


def test_a_cache_over_the_memory_limit_is_not_built_and_says_so(monkeypatch):
    monkeypatch.setattr(teacher_cache, "MAX_CACHE_BYTES", 1000)
    cache = TeacherCache(samples=100, sequence=6)
    tensors = _tensors(2, 6)
    assert cache.put(torch.tensor([0, 1]), NAMES, tensors, 6) == tensors
    assert cache.get(torch.tensor([0, 1]), 6, NAMES) is None
    report = cache.report()
    assert not report["used"] and "teacher runs on every step" in report["note"]


def test_students_pairing_different_teacher_layers_share_what_they_have_in_common():
    cache = TeacherCache(samples=10, sequence=6, data="digest")
    index = torch.tensor([0, 1])
    logits, layer0 = _tensors(2, 6)
    cache.put(index, NAMES, [logits, layer0], 6)
    assert cache.get(index, 6, [OUTPUT, "encoder.layer.2"]) is None  # a layer never stored: the teacher must run
    cache.put(index, [OUTPUT, "encoder.layer.2"], [logits, layer0 * 2], 6)
    both = cache.get(index, 6, [OUTPUT, "encoder.layer.0", "encoder.layer.2"])
    assert both is not None and torch.allclose(both[2].float(), 2 * both[1].float())
    assert cache.serves(10, 6, "digest") and not cache.serves(10, 6, "other data") and not cache.serves(12, 6, "digest")
