"""Dynamic padding (to the longest example of a batch) gives the features of padding to the full length."""

import numpy as np
import torch

from lpft_nb.data.tasks import Split
from lpft_nb.model.classifier import build_classifier, load_tokenizer
from lpft_nb.model.train import encode


def test_dynamic_padding_gives_the_features_of_full_length_padding(tiny_model):
    tokenizer = load_tokenizer(tiny_model, None)
    model = build_classifier(tiny_model, 3, seed=0).eval()
    texts = [
        "a short one",
        "a somewhat longer sentence with several more words in it",
        "mid length text here",
    ]
    split = Split(name="test", texts=texts, labels=np.zeros(3, dtype=np.int64))
    enc = encode(split, tokenizer, max_length=128)
    batch = enc.batch([0, 1, 2])
    full = {k: torch.nn.functional.pad(v, (0, 128 - v.shape[1]), value=0) for k, v in batch.items()}
    full["input_ids"] = torch.where(full["attention_mask"].bool(), full["input_ids"], enc.pad_id)
    with torch.no_grad():
        dynamic, padded = model.features(**batch), model.features(**full)
    assert batch["input_ids"].shape[1] < 128
    np.testing.assert_allclose(dynamic.numpy(), padded.numpy(), atol=1e-5)
