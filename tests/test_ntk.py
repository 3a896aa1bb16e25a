import numpy as np
import pytest
import torch

from lpft_nb.analysis.kernel_stats import flat, ft_ratio, kernel_regression, residuals
from lpft_nb.analysis.ntk import compute_kernels, full_ntk_reference
from lpft_nb.data.tasks import load_task
from lpft_nb.model.classifier import build_classifier, load_tokenizer
from lpft_nb.model.train import encode


@pytest.fixture(scope="module")
def tiny_data(tiny_model, data_dir):
    task = load_task("cb", data_dir, max_train=12, max_eval=6)
    tok = load_tokenizer(tiny_model)
    return encode(task.train, tok, 32), encode(task.test, tok, 32)


def _kernels(model, tiny_data, n_train=5, n_eval=3, **kw):
    train, test = tiny_data
    return compute_kernels(model, train, np.arange(n_train), test, np.arange(n_eval), **kw)


def _reference(model, tiny_data, n_train=5, n_eval=3, lora_only=False):
    from lpft_nb.analysis.ntk import Encoded

    train, test = tiny_data
    merged = Encoded(
        [*train.input_ids[:n_train], *test.input_ids[:n_eval]],
        [*train.token_type_ids[:n_train], *test.token_type_ids[:n_eval]],
        np.concatenate([train.labels[:n_train], test.labels[:n_eval]]),
        train.pad_id,
    )
    return full_ntk_reference(model, merged, range(n_train + n_eval), lora_only=lora_only)


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def _needed_blocks(K4, n_train):
    """train×train and eval×train blocks (eval×eval is not computed)."""
    return np.concatenate([K4[:, :, :n_train].reshape(-1), K4[:n_train, :, n_train:].reshape(-1)])


@pytest.mark.parametrize(
    "memory_gib, spill",
    [(1.0, True), (1e-4, False), (1e-4, True)],  # one parameter group; many, repeated or spilled to disk
)
def test_p_plus_f_equals_the_full_parameter_ntk(tiny_model, tiny_data, memory_gib, spill, tmp_path):
    torch.manual_seed(0)
    model = build_classifier(tiny_model, 3, seed=3).double()
    with torch.no_grad():  # a non-trivial head, as after LP
        model.head.weight.mul_(20)
        model.head.bias.normal_()
    parts = _kernels(model, tiny_data, memory_gib=memory_gib, spill=spill, spill_dir=str(tmp_path))
    ref = _reference(model, tiny_data)
    ours = parts.P() + parts.F
    assert _rel(_needed_blocks(ours, 5), _needed_blocks(ref, 5)) < 1e-6
    if memory_gib < 1:
        assert parts.parameter_groups > 3
    # C passes per example: once when the groups' rows are spilled to disk, else once per group
    assert parts.backward_passes == (1 if spill else parts.parameter_groups) * 8 * 3
    assert list(tmp_path.iterdir()) == []  # the spilled rows are removed


def test_lora_f_is_the_kernel_over_lora_parameters(tiny_model, tiny_data):
    model = build_classifier(tiny_model, 3, seed=4, lora=True, lora_r=4, lora_alpha=8).double()
    with torch.no_grad():  # move B off zero so that both LoRA factors carry gradient
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    parts = _kernels(model, tiny_data)
    ref = _reference(model, tiny_data, lora_only=True)
    assert _rel(_needed_blocks(parts.P() + parts.F, 5), _needed_blocks(ref, 5)) < 1e-6
    assert parts.n_parameters == sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)


def test_p_is_the_same_for_a_random_and_an_lp_head(tiny_model, tiny_data):
    random_head = build_classifier(tiny_model, 3, seed=5).double()
    lp_head = build_classifier(tiny_model, 3, seed=5).double()
    with torch.no_grad():
        lp_head.head.weight.normal_(std=2.0)
    a, b = _kernels(random_head, tiny_data), _kernels(lp_head, tiny_data)
    np.testing.assert_allclose(a.p_scalar, b.p_scalar, rtol=1e-12)
    assert _rel(b.F, a.F) > 1  # F follows the head


def test_f_scales_with_the_square_of_the_head(tiny_model, tiny_data):
    model = build_classifier(tiny_model, 3, seed=6).double()
    base = _kernels(model, tiny_data)
    with torch.no_grad():
        model.head.weight.mul_(3)
    np.testing.assert_allclose(_kernels(model, tiny_data).F, 9 * base.F, rtol=1e-9, atol=1e-12)


def test_sampled_embeddings_estimate_the_exact_kernel(tiny_model, tiny_data):
    model = build_classifier(tiny_model, 3, seed=7).double()
    exact = _kernels(model, tiny_data).F
    none = _kernels(model, tiny_data, embeddings="none").F
    sampled = np.mean([_kernels(model, tiny_data, embeddings="sampled", seed=s).F for s in range(4)], axis=0)
    emb_part = exact - none
    assert np.linalg.norm(emb_part) > 0
    assert _rel(sampled - none, emb_part) < 0.5  # unbiased, noisy


def test_ft_ratio_and_residuals_by_hand():
    logits0 = np.zeros((2, 2))
    delta = residuals(logits0, np.array([0, 1]))
    np.testing.assert_allclose(delta, [[0.5, -0.5], [-0.5, 0.5]])
    P = np.einsum("nm,cd->ncmd", np.eye(2), np.eye(2))
    assert ft_ratio(P, 3 * P, delta) == pytest.approx(0.75)  # ‖3Pδ‖ / ‖4Pδ‖


def test_kernel_regression_replicates_the_per_logit_accuracy():
    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    phi = np.eye(3)[y] * 3 + rng.normal(size=(30, 3)) * 0.3
    K4 = np.einsum("nm,cd->ncmd", phi @ phi.T + 1, np.eye(3))
    acc = kernel_regression(flat(K4), flat(K4), y, y, 3)
    # independent: the authors' per-(example, class) binary samples, built by a plain loop
    from sklearn.linear_model import LogisticRegressionCV

    targets = np.array([int(y[n] == c) for n in range(30) for c in range(3)])
    ref = LogisticRegressionCV(cv=5, max_iter=10000, random_state=0).fit(flat(K4), targets)
    assert acc["per_logit_train"] == pytest.approx(ref.score(flat(K4), targets))
    assert acc["per_logit_train"] > 2 / 3  # beats predicting every logit 0, whose accuracy is (C − 1)/C
    scores = ref.decision_function(flat(K4)).reshape(30, 3)
    assert acc["argmax_train"] == pytest.approx(np.mean(scores.argmax(1) == y)) and acc["argmax_train"] > 0.9


def test_query_value_subset_equals_the_sum_of_those_parameters_kernels(tiny_model, tiny_data):
    from lpft_nb.analysis.ntk import ft_effective_kernel

    model = build_classifier(tiny_model, 3, seed=8).double()
    train, _ = tiny_data
    qv = ft_effective_kernel(model, train, np.arange(4), 4, subset="query_value")[0]
    names = [n for n, _ in model.encoder.named_parameters() if n.endswith(("query.weight", "value.weight"))]
    assert len(names) == 4  # 2 layers × (query, value)
    # independent: Jacobian of the logits w.r.t. exactly those matrices, by autograd one example at a time
    rows = []
    params = dict(model.encoder.named_parameters())
    for i in range(4):
        logits = model(**train.batch([i]))[0] - model.head.bias
        for c in range(3):
            grads = torch.autograd.grad(logits[c], [params[n] for n in names], retain_graph=True)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
    J = torch.stack(rows)
    np.testing.assert_allclose(qv.reshape(12, 12), (J @ J.T).numpy(), rtol=1e-10)


def test_peft_lora_a_init_has_the_kaiming_uniform_variance(tiny_model, tmp_path):
    from lpft_nb.analysis.lora import lora_init_variance

    v = lora_init_variance(tiny_model, r=8, cache_dir=str(tmp_path))
    assert v["d_in"] == 32 and v["empirical"] == pytest.approx(v["theory"], rel=0.15)
    assert [p.name.split("-")[:2] for p in (tmp_path / "memo").iterdir()] == [["lora", "init"]]
    assert lora_init_variance(tiny_model, r=8, cache_dir=str(tmp_path)) == v  # read back from the memo


def test_float32_rows_give_the_float64_kernel_to_float32_precision(tiny_model, tiny_data):
    # float32 models take the chunked float32 Gram path (float64 accumulation across chunks)
    model = build_classifier(tiny_model, 3, seed=8)
    with torch.no_grad():
        model.head.weight.mul_(20)
    single = _kernels(model, tiny_data, memory_gib=1e-4)
    double = _kernels(model.double(), tiny_data, memory_gib=1e-4)
    assert single.F.dtype == np.float64
    assert _rel(_needed_blocks(single.F, 5), _needed_blocks(double.F, 5)) < 1e-5
