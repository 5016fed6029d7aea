"""A forward that stops after the deepest requested layer gives the whole forward's values, for
every verified family and both sites, and really stops: the blocks after it never run.

Models have 3 layers, so a subset can end below the last layer, skip the first, or sit in the
middle. DeBERTa-v2 gets the convolution it may add after block 0 and relative attention (as in
DeBERTa-v3), the parts that sit between or outside its blocks. The reference is the HF forward of
each text alone (tests/extraction/test_families.py): all its hidden states, the last one after the
final norm, and FFN units rebuilt from other modules than the one neurosel hooks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import neurosel
from neurosel.extraction import BLOCKS, FAMILIES
from tests.extraction.test_families import TEXTS, _reference
from tests.families import DECODERS, ENCODERS, _config, build_tiny

LAYERS = 3
BOTH = ("hidden", "ffn")
# (layers argument, sites, each site's layer ids, the deepest of them) with 3 layers: hidden states
# 0..3, FFN 1..3. The first is the whole forward, whose bytes every other case must repeat.
CASES = [
    ("all", BOTH, {"hidden": [0, 1, 2, 3], "ffn": [1, 2, 3]}, LAYERS),
    ([1], BOTH, {"hidden": [1], "ffn": [1]}, 1),  # one layer, in the middle
    ([1, -2], BOTH, {"hidden": [1, 2], "ffn": [1, 2]}, 2),  # negative: the layer before the last
    ([0, 2], ("hidden",), {"hidden": [0, 2]}, 2),  # a gap
    ([0], ("hidden",), {"hidden": [0]}, 0),  # the embeddings alone: no block runs
]


def build_deep(model_type: str, path: Path) -> Path:
    """A tiny `model_type` model as tests/families.py builds it, with LAYERS layers."""
    from transformers import AutoConfig, AutoModel

    build_tiny(model_type, path)  # the tokenizer, and the vocabulary size it fixes
    options = _config(model_type, AutoConfig.from_pretrained(path).vocab_size)
    key = {"gpt2": "n_layer", "distilbert": "n_layers"}.get(model_type, "num_hidden_layers")
    options[key] = LAYERS
    if model_type == "deberta-v2":
        options.update(
            conv_kernel_size=3, relative_attention=True, position_buckets=16, max_relative_positions=-1,
            norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"], share_att_key=True,
        )  # fmt: skip
    torch.manual_seed(5)
    AutoModel.from_config(AutoConfig.for_model(model_type, **options)).save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=ENCODERS + DECODERS)
def deep(request, tmp_path_factory) -> tuple[str, Path, dict]:
    model_type = request.param
    path = build_deep(model_type, tmp_path_factory.mktemp(model_type))
    return model_type, path, _reference(path, model_type)


def test_every_family_has_its_blocks_mapped():
    assert set(BLOCKS) == set(FAMILIES)


def _tokens(reference: list[np.ndarray], layers: list[int], first: int) -> np.ndarray:
    """The reference's token states of `layers` (site layer ids; `first` is the site's first id)."""
    return np.concatenate([r[:, [layer - first for layer in layers]] for r in reference])


class BlockRuns:
    """Forward hooks counting the base model's forward passes and each block module's finished runs."""

    def __init__(self, model, model_type: str) -> None:
        base = model.base_model
        modules = dict(base.named_modules())
        names = dict.fromkeys(BLOCKS[model_type].module(b, base.config) for b in range(LAYERS))
        self.finished = dict.fromkeys(names, 0)
        self.forwards = 0
        self.handles = [modules[n].register_forward_hook(self._finish(n)) for n in names]
        self.handles.append(base.register_forward_pre_hook(self._forward))

    def _finish(self, name: str):
        def hook(_m, _a, _o):
            self.finished[name] += 1

        return hook

    def _forward(self, _m, _a):
        self.forwards += 1

    def reset(self) -> None:
        self.forwards = 0
        self.finished = dict.fromkeys(self.finished, 0)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def test_a_subset_of_layers_equals_the_whole_forward_which_stops_after_it(deep, tmp_path):
    """Values: every case equals the whole forward byte for byte and a lone HF forward within 1e-5.
    Stopping: with hidden states only (FFN sites add a one-text probe of the whole model), blocks
    0 … m-1 finish in every forward for layers up to m < L, block m and the later ones never (ALBERT
    runs one shared module per block: it finishes m times per forward, not L)."""
    from transformers import AutoModel, AutoTokenizer

    model_type, path, reference = deep
    model = (AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path))
    runs = BlockRuns(model[0], model_type)
    whole = {}
    try:
        for n, (layers, sites, ids, deepest) in enumerate(CASES):
            runs.reset()
            stores = neurosel.extract(
                TEXTS, model, tmp_path / f"{n}-{{site}}.zarr", sites=sites, layers=layers, pooling="tokens",
                dtype="float32", device="cpu", progress=False, token_budget=96,
            )  # fmt: skip
            stores = stores if isinstance(stores, dict) else {sites[0]: stores}
            for site, first in (("hidden", 0), ("ffn", 1)):
                if site not in sites:
                    continue
                got = stores[site].read()
                whole.setdefault(site, got)
                assert stores[site].meta["layers"] == ids[site], (model_type, layers, site)
                np.testing.assert_array_equal(got, whole[site][:, [i - first for i in ids[site]]])
                np.testing.assert_allclose(
                    got, _tokens(reference[site], ids[site], first), atol=1e-5, rtol=0,
                    err_msg=f"{model_type} {site} layers {layers}",
                )  # fmt: skip
            if sites == BOTH and deepest < LAYERS:
                continue
            finished, forwards = list(runs.finished.values()), runs.forwards
            assert forwards > 1, model_type  # several batches
            if len(finished) == 1:  # one module runs every block
                assert finished == [deepest * forwards], (model_type, layers)
            else:
                assert finished == [forwards] * deepest + [0] * (LAYERS - deepest), (model_type, layers)
    finally:
        runs.remove()
