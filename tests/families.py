"""Tiny randomly initialised models of every family neurosel verifies, built offline.

Encoders share the word-level BERT tokenizer of `build_tiny_bert` (the forward pass is what is
verified); decoders get what their family's tokenizer does: GPT-2 a byte-level BPE with no pad token
and no BOS, Llama/Mistral a BOS-prefixing tokenizer, Qwen a tokenizer with a pad token and no BOS.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import WORDS, build_tiny_bert

HIDDEN, LAYERS, HEADS, INTERMEDIATE = 32, 2, 4, 48

ENCODERS = (
    "bert", "roberta", "distilbert", "albert", "electra", "deberta-v2", "xlm-roberta", "mpnet", "modernbert",
)  # fmt: skip
DECODERS = ("gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma")


def build_tiny(model_type: str, path: Path) -> Path:
    """Save a tiny `model_type` model (2 layers, hidden 32) and a tokenizer for it to `path`."""
    if model_type in DECODERS:
        tokenizer = _decoder_tokenizer(model_type)
        vocab = len(tokenizer)
    else:
        build_tiny_bert(path)
        from transformers import AutoTokenizer

        tokenizer = None
        vocab = len(AutoTokenizer.from_pretrained(path))
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.for_model(model_type, **_config(model_type, vocab))
    torch.manual_seed(3)
    model = AutoModel.from_config(config)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def _config(model_type: str, vocab: int) -> dict:
    common = {
        "vocab_size": vocab, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "intermediate_size": INTERMEDIATE, "max_position_embeddings": 128,
    }  # fmt: skip
    if model_type == "gpt2":
        return {"vocab_size": vocab, "n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS,
                "n_inner": INTERMEDIATE, "n_positions": 128, "bos_token_id": 0,
                "eos_token_id": 0}  # fmt: skip
    if model_type == "distilbert":
        return {"vocab_size": vocab, "dim": HIDDEN, "n_layers": LAYERS, "n_heads": HEADS,
                "hidden_dim": INTERMEDIATE, "max_position_embeddings": 128, "pad_token_id": 0}  # fmt: skip
    if model_type in ("roberta", "xlm-roberta"):
        return {**common, "pad_token_id": 0, "max_position_embeddings": 130, "type_vocab_size": 1}
    if model_type == "albert":
        return {**common, "embedding_size": 16}
    if model_type == "electra":
        return {**common, "embedding_size": 16}
    if model_type == "mpnet":
        return {**common, "pad_token_id": 0, "max_position_embeddings": 130}
    if model_type == "modernbert":
        return {**common, "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2,
                "sep_token_id": 3, "global_attn_every_n_layers": 2, "local_attention": 16}  # fmt: skip
    if model_type in DECODERS:
        return {**common, "num_key_value_heads": 2, "head_dim": HIDDEN // HEADS, "pad_token_id": 1,
                "bos_token_id": 2, "eos_token_id": 3}  # fmt: skip
    return common


def _decoder_tokenizer(model_type: str):
    """A byte-level BPE trained on the test words, wrapped as the family's tokenizer class would be."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<pad>", "<s>", "</s>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([" ".join(WORDS)] * 4, trainer)
    if model_type == "gpt2":  # no pad token, no BOS: GPT-2's own tokenizer
        return GPT2TokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    names = ["input_ids", "attention_mask"]
    if model_type in ("llama", "mistral", "gemma"):  # "<s> text": the BOS these families prepend
        bpe.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 2)]
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=bpe,
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            model_input_names=names,
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<pad>", model_input_names=names
    )
