"""Every verified family, every pooling, every site: extraction equals a one-text-at-a-time Hugging
Face forward (fp32, within 1e-5); an unverified family is refused by its model_type.

The reference runs each text alone, unpadded, through `AutoModel` with the tokenizer's own inputs
(so no padding, position or token type handling of neurosel's is in it). FFN neurons are rebuilt
from other modules than the one neurosel hooks: the activation function applied to the up
projection's output (times the gate for gated FFNs), so a wrong module path or hook shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import neurosel
from neurosel.extraction import FAMILIES, SITES
from tests.conftest import random_texts
from tests.families import DECODERS, ENCODERS, build_tiny

POOLINGS = ("mean", "cls", "max", "last", "tokens")
TEXTS = random_texts(12, seed=4, min_words=1, max_words=30)


def test_every_verified_family_is_tested():
    assert set(FAMILIES) == set(ENCODERS) | set(DECODERS)
    assert set(SITES["ffn"]) == set(FAMILIES)


def _ffn_reference(model, model_type: str) -> tuple[list, list]:
    """Hooks rebuilding each block's FFN units from the up projection: (handles, per-block lists)."""
    base = model.base_model
    layers = model.config.num_hidden_layers
    kept: list[list[torch.Tensor]] = [[] for _ in range(layers)]
    modules = dict(base.named_modules())
    handles = []

    def keep(block: int, fn):
        return lambda _m, _a, out: kept[block].append(fn(out))

    if model_type == "albert":  # one shared layer: its calls come in block order
        layer = modules["encoder.albert_layer_groups.0.albert_layers.0"]
        calls: list[torch.Tensor] = []
        handles.append(
            layer.ffn.register_forward_hook(lambda _m, _a, out: calls.append(layer.activation(out)))
        )
        return handles, calls
    for b in range(layers):
        if model_type == "distilbert":
            ffn = modules[f"transformer.layer.{b}.ffn"]
            handles.append(ffn.lin1.register_forward_hook(keep(b, lambda out, f=ffn: f.activation(out))))
        elif model_type == "modernbert":
            mlp = modules[f"layers.{b}.mlp"]

            def glu(out, m=mlp):
                x, gate = out.chunk(2, dim=-1)
                return m.act(x) * gate

            handles.append(mlp.Wi.register_forward_hook(keep(b, glu)))
        elif model_type == "gpt2":
            mlp = modules[f"h.{b}.mlp"]
            handles.append(mlp.c_fc.register_forward_hook(keep(b, lambda out, m=mlp: m.act(out))))
        elif model_type in DECODERS:
            mlp = modules[f"layers.{b}.mlp"]
            gates: list[torch.Tensor] = []
            handles.append(mlp.gate_proj.register_forward_hook(lambda _m, _a, out, g=gates: g.append(out)))
            handles.append(
                mlp.up_proj.register_forward_hook(
                    lambda _m, _a, out, m=mlp, g=gates, blk=b: kept[blk].append(m.act_fn(g.pop()) * out)
                )
            )
        else:  # BERT layout: the intermediate module applies dense then the activation
            handles.append(
                modules[f"encoder.layer.{b}.intermediate"].register_forward_hook(keep(b, lambda out: out))
            )
    return handles, kept


def _reference(path: Path, model_type: str) -> dict[str, list[np.ndarray]]:
    """Per text, the (seq, layers, width) token states at each site from a lone forward pass."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    handles, kept = _ffn_reference(model, model_type)
    out: dict[str, list[np.ndarray]] = {"hidden": [], "ffn": []}
    for text in TEXTS:
        enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=128)
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states
        out["hidden"].append(torch.stack([h[0] for h in hidden], 1).numpy())
        blocks = kept[: model.config.num_hidden_layers] if model_type == "albert" else [k[-1] for k in kept]
        out["ffn"].append(torch.stack([b[0] for b in blocks], 1).numpy())
        if model_type == "albert":
            kept.clear()
    for handle in handles:
        handle.remove()
    return out


def _pooled(states: np.ndarray, pooling: str) -> np.ndarray:
    return {
        "mean": lambda s: s.mean(0),
        "cls": lambda s: s[0],
        "max": lambda s: s.max(0),
        "last": lambda s: s[-1],
        "tokens": lambda s: s,
    }[pooling](states)


@pytest.mark.parametrize("model_type", ENCODERS + DECODERS)
def test_family_equals_a_lone_forward_at_every_site_and_pooling(model_type, tmp_path):
    path = build_tiny(model_type, tmp_path / model_type)
    reference = _reference(path, model_type)
    for pooling in POOLINGS:
        stores = neurosel.extract(
            TEXTS, str(path), tmp_path / f"{pooling}-{{site}}.zarr", sites=("hidden", "ffn"), pooling=pooling,
            dtype="float32", device="cpu", progress=False, token_budget=96,
        )  # fmt: skip
        for site, store in stores.items():
            want = [_pooled(r, pooling) for r in reference[site]]
            want = np.concatenate(want) if pooling == "tokens" else np.stack(want)
            assert store.meta["site"] == site and store.meta["model_type"] == model_type
            got = store.read()
            assert got.shape == want.shape, (pooling, site)
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=f"{model_type} {site} {pooling}")


@pytest.mark.parametrize("model_type", ["gpt2", "llama"])
def test_decoders_pool_the_last_real_token_by_default(model_type, tmp_path):
    path = build_tiny(model_type, tmp_path / model_type)
    store = neurosel.extract(
        TEXTS, str(path), tmp_path / "s.zarr", dtype="float32", device="cpu", progress=False
    )
    assert store.meta["pooling"] == "last" and store.meta["family"] == "decoder"
    want = np.stack([r[-1] for r in _reference(path, model_type)["hidden"]])
    np.testing.assert_allclose(store.read(), want, atol=1e-5, rtol=0)


def test_an_unverified_family_is_refused_by_model_type(tmp_path):
    from transformers import FunnelConfig, FunnelModel

    from neurosel.errors import InputError
    from tests.conftest import build_tiny_bert

    path = build_tiny_bert(tmp_path / "funnel")
    FunnelModel(FunnelConfig(vocab_size=200, d_model=32, n_head=4, d_head=8, d_inner=64,
                                       block_sizes=[1, 1])).save_pretrained(path)  # fmt: skip
    with pytest.raises(
        InputError, match=r"model_type 'funnel' is not a verified family; neurosel reads .*gpt2"
    ):
        neurosel.extract(TEXTS, str(path), tmp_path / "s.zarr", device="cpu", progress=False)
    assert not (tmp_path / "s.zarr").exists()
