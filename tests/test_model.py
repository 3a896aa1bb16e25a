import pytest
import torch

from lpft_nb.model.classifier import (
    HEAD_INIT_STD,
    build_classifier,
    load_tokenizer,
    trainable_parameter_names,
)
from lpft_nb.model.hub import ModelNotFoundError, resolve_model_path


def _batch(tiny_model):
    tok = load_tokenizer(tiny_model)
    return dict(tok(["a premise here", "another"], ["a hypothesis", "b"], padding=True, return_tensors="pt"))


def test_features_are_first_token_final_hidden_state(tiny_model):
    model = build_classifier(tiny_model, 3, seed=0).eval()
    batch = _batch(tiny_model)
    phi = model.features(**batch)
    hidden = model.encoder(**batch).last_hidden_state
    assert phi.shape == (2, model.encoder.config.hidden_size)
    torch.testing.assert_close(phi, hidden[:, 0])
    torch.testing.assert_close(model(**batch), phi @ model.head.weight.T + model.head.bias)


def test_head_is_one_linear_layer_initialised_as_the_paper(tiny_model):
    model = build_classifier(tiny_model, 3, seed=0)
    assert isinstance(model.head, torch.nn.Linear) and model.head.weight.shape == (3, 32)
    assert torch.all(model.head.bias == 0)
    big = build_classifier(tiny_model, 200, seed=0)  # enough entries for a std estimate
    assert abs(float(big.head.weight.detach().std()) - HEAD_INIT_STD) < 0.002
    assert not any("pooler" in n for n, _ in model.named_parameters())


def test_same_seed_same_head_other_seed_other_head(tiny_model):
    a, b, c = (build_classifier(tiny_model, 3, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.head.weight, b.head.weight) and not torch.equal(a.head.weight, c.head.weight)


def test_lora_trains_only_lora_and_head_and_starts_at_the_base_model(tiny_model):
    base = build_classifier(tiny_model, 3, seed=5).eval()
    lora = build_classifier(tiny_model, 3, seed=5, lora=True, lora_r=4, lora_alpha=4).eval()
    names = trainable_parameter_names(lora)
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert {"head.weight", "head.bias"} <= set(names)
    assert any("query" in n for n in names) and any("value" in n for n in names)
    assert not any("key" in n or "dense" in n for n in names)
    batch = _batch(tiny_model)
    torch.testing.assert_close(lora(**batch), base(**batch))  # B = 0 at init


@pytest.mark.parametrize("offline", [None, "1"])
def test_missing_model_is_a_clear_error(tmp_path, monkeypatch, offline):
    """One line either way: online it names the lookup that failed, offline the variable that forbids it
    (the test sets HF_HUB_OFFLINE itself: the suite passes with and without it in the environment)."""
    if offline is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        # no network: the lookup fails; with one: the Hub has no such model
        expected = (
            "neither a local folder nor in the Hugging Face cache|no such model on the Hugging Face Hub"
        )
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
        expected = "not in the Hugging Face cache and HF_HUB_OFFLINE is set"
    with pytest.raises(ModelNotFoundError, match=expected):
        resolve_model_path("no-such-org/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path / "empty"))


def test_embedded_model_resolves_offline():
    path = resolve_model_path("all-MiniLM-L6-v2")
    assert path.endswith("model")
