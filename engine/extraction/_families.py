"""The model families neurosel has verified, and where each site's neurons are in each of them.

A family is verified when tests/extraction/test_families.py shows its activations equal a
one-text-at-a-time Hugging Face forward (within 1e-5 in fp32) under every pooling and at every site
listed for it, and a forward stopped after any requested layer equals the whole one; anything else
is refused by `model_type`, never read silently wrong. Adding a family is one `FAMILIES` entry, one
`BLOCKS` entry (its transformer block) and a tiny model in tests/families.py; adding a site is one
`SITES` entry naming, per family, the module whose input (or output) holds the site's neurons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from neurosel.errors import InputError

Kind = Literal["encoder", "decoder"]


@dataclass(frozen=True)
class Family:
    """How a family is run: `kind` sets the default pooling (mean for encoders, the last real token
    for decoders); `token_types` says whether its forward takes token type ids that mean something
    (segment embeddings: BERT, ALBERT, ELECTRA). GPT-2's forward also takes `token_type_ids`, but
    embeds them with the word embeddings, so passing the tokenizer's zeros adds a spurious vector
    to every position: the bug that made GPT-2 activations differ by more than 1 from its own
    forward."""

    kind: Kind
    token_types: bool = False


FAMILIES: dict[str, Family] = {
    "bert": Family("encoder", token_types=True),
    "roberta": Family("encoder"),
    "xlm-roberta": Family("encoder"),
    "distilbert": Family("encoder"),
    "albert": Family("encoder", token_types=True),
    "electra": Family("encoder", token_types=True),
    "deberta-v2": Family("encoder"),
    "mpnet": Family("encoder"),
    "modernbert": Family("encoder"),
    "gpt2": Family("decoder"),
    "llama": Family("decoder"),
    "mistral": Family("decoder"),
    "qwen2": Family("decoder"),
    "qwen3": Family("decoder"),
    "gemma": Family("decoder"),
}

DEFAULT_POOLING = {"encoder": "mean", "decoder": "last"}


@dataclass(frozen=True)
class SitePath:
    """Where a site's neurons are in one family: the module (a path template with `{block}`, the
    0-based transformer block, relative to the base model) and whether they are its `input` (the
    FFN's down projection takes the activated intermediate units) or its `output`."""

    template: str
    hook: Literal["input", "output"] = "input"

    def module(self, block: int, config: Any) -> str:
        return self.template.format(block=block, group=_albert_group(block, config))


def _albert_group(block: int, config: Any) -> int:
    """ALBERT shares one layer group among several blocks: the group block `block` runs."""
    groups = int(getattr(config, "num_hidden_groups", 1) or 1)
    return int(block / (int(config.num_hidden_layers) / groups))


# The FFN's intermediate units after the activation function (after the gate for gated FFNs): the
# input of each block's down projection, which is what TransformerLens calls `mlp.hook_post`.
_BERT_FFN = SitePath("encoder.layer.{block}.output.dense")
_GATED_FFN = SitePath("layers.{block}.mlp.down_proj")
SITES: dict[str, dict[str, SitePath]] = {
    "ffn": {
        "bert": _BERT_FFN,
        "roberta": _BERT_FFN,
        "xlm-roberta": _BERT_FFN,
        "electra": _BERT_FFN,
        "deberta-v2": _BERT_FFN,
        "mpnet": _BERT_FFN,
        "distilbert": SitePath("transformer.layer.{block}.ffn.lin2"),
        "albert": SitePath("encoder.albert_layer_groups.{group}.albert_layers.0.ffn_output"),
        "modernbert": SitePath("layers.{block}.mlp.Wo"),
        "gpt2": SitePath("h.{block}.mlp.c_proj"),
        "llama": _GATED_FFN,
        "mistral": _GATED_FFN,
        "qwen2": _GATED_FFN,
        "qwen3": _GATED_FFN,
        "gemma": _GATED_FFN,
    },
}
# "hidden": each block's output (and the embeddings as layer 0), from the model's hidden states.
HIDDEN = "hidden"


def family_of(model_type: str, model_id: str) -> Family:
    """The verified family of `model_type`; InputError naming it and the supported ones otherwise."""
    family = FAMILIES.get(model_type)
    if family is None:
        raise InputError(
            f"model {model_id!r}: model_type {model_type!r} is not a verified family; neurosel reads "
            f"{', '.join(sorted(FAMILIES))} (docs/extraction.md says how a family is verified)"
        )
    return family


def check_site(site: str, model_type: str, config: Any, model_id: str) -> None:
    """Refuse a site this family has no verified module for, before any work."""
    if site == HIDDEN:
        return
    paths = SITES.get(site)
    if paths is None:
        raise InputError(f"sites {site!r}: unknown; use {', '.join(site_names())}")
    if model_type not in paths:
        raise InputError(
            f"sites {site!r}: not mapped for model_type {model_type!r} (model {model_id!r}); "
            f"it is for {', '.join(sorted(paths))}"
        )
    if model_type == "albert" and int(getattr(config, "inner_group_num", 1)) != 1:
        raise InputError(
            f"sites {site!r}: model {model_id!r} runs {config.inner_group_num} ALBERT layers per block; "
            "the FFN site is verified for inner_group_num 1 only"
        )


def site_names() -> tuple[str, ...]:
    return (HIDDEN, *SITES)


def site_layers(site: str, num_layers: int) -> list[int]:
    """The layer ids a site has: 0 (embeddings) … num_layers for hidden states, 1 … num_layers (the
    blocks, numbered as the hidden state each one outputs) for block sites such as the FFN."""
    return list(range(num_layers + 1)) if site == HIDDEN else list(range(1, num_layers + 1))


def site_module(site: str, model_type: str, config: Any) -> str:
    """What the store records as the site's origin: the module path template (or "hidden_states")."""
    if site == HIDDEN:
        return "hidden_states"
    path = SITES[site][model_type]
    return f"{path.template}:{path.hook}"


# Each family's transformer block (a module called once per block; ALBERT's shared layer group once
# per block it runs). Its input is the residual stream entering it: hidden state `block`, what the
# model's hidden_states[block] holds for every block but the last (the last hidden state is the
# final block's output, after the final norm in GPT-2, Llama-style decoders and ModernBERT). A
# forward that stops early reads hidden states here, and stops on entering the block after the
# deepest requested layer.
_BERT_BLOCK = SitePath("encoder.layer.{block}")
_DECODER_BLOCK = SitePath("layers.{block}")
BLOCKS: dict[str, SitePath] = {
    "bert": _BERT_BLOCK,
    "roberta": _BERT_BLOCK,
    "xlm-roberta": _BERT_BLOCK,
    "electra": _BERT_BLOCK,
    "deberta-v2": _BERT_BLOCK,  # its input is after the convolution DeBERTa-v2 may add to block 0
    "mpnet": _BERT_BLOCK,
    "distilbert": SitePath("transformer.layer.{block}"),
    "albert": SitePath("encoder.albert_layer_groups.{group}"),
    "modernbert": _DECODER_BLOCK,
    "gpt2": SitePath("h.{block}"),
    "llama": _DECODER_BLOCK,
    "mistral": _DECODER_BLOCK,
    "qwen2": _DECODER_BLOCK,
    "qwen3": _DECODER_BLOCK,
    "gemma": _DECODER_BLOCK,
}


def stop_layer(model_type: str, config: Any, layers: list[int]) -> int | None:
    """The layer after which a forward may stop: the deepest of `layers` (layer ids of every site
    of the pass) when a block follows it, i.e. it is below the last layer; None (run the whole
    model, reading hidden states from its output) otherwise. ALBERT with several layers per block is
    run whole: its hidden_states count inner layers, not blocks."""
    deepest = max(layers)
    if deepest >= int(config.num_hidden_layers) or model_type not in BLOCKS:
        return None
    if model_type == "albert" and int(getattr(config, "inner_group_num", 1)) != 1:
        return None
    return deepest


def _calls(path: SitePath, config: Any) -> list[tuple[str, int]]:
    """Per block, the module that runs it and which of that module's calls in a forward it is (a
    module shared by several blocks, as in ALBERT, is called once per block, in block order)."""
    seen: dict[str, int] = {}
    calls = []
    for block in range(int(config.num_hidden_layers)):
        name = path.module(block, config)
        calls.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return calls


class SiteCapture:
    """Forward hooks that keep each requested layer's site tensor during one forward pass.

    A block site's layer `layer` is block `layer - 1`'s module; a hidden state's layer `layer` is
    the input of block `layer` (so hidden states are captured only below the last layer, when the
    forward stops early). Modules shared by several blocks (ALBERT) fire once per block, in block
    order; each call is kept, and block b's tensor is the k-th call of its module, k counting the
    earlier requested and unrequested blocks that share it. `tensor(layer)` gives the tensor of
    layer id `layer` from the last forward.
    """

    def __init__(self, base_model: Any, site: str, model_type: str, layers: list[int]) -> None:
        if site == HIDDEN:
            path, self.first = BLOCKS[model_type], 0
        else:
            path, self.first = SITES[site][model_type], 1
        self.where = _calls(path, base_model.config)
        wanted = {self.where[layer - self.first][0] for layer in layers}
        modules = dict(base_model.named_modules())
        self.calls: dict[str, list[Any]] = {}
        self.handles = []
        for name in sorted(wanted):
            calls: list[Any] = []
            self.calls[name] = calls
            self.handles.append(_hook(modules[name], path.hook, calls.append))

    def clear(self) -> None:
        for calls in self.calls.values():
            calls.clear()

    def tensor(self, layer: int) -> Any:
        name, k = self.where[layer - self.first]
        tensor = self.calls[name][k]
        if tensor.ndim != 3:  # e.g. ModernBERT under flash attention runs its blocks unpadded
            raise InputError(
                f"sites: {name} gave a {tuple(tensor.shape)} tensor, not (rows, tokens, units): the model "
                "runs its blocks on unpadded tokens; load it with attn_implementation='sdpa' or 'eager'"
            )
        return tensor

    def states(self, target: Any) -> dict[int, Any]:
        """The (rows, seq, width) tensor of each layer of `target` (its `meta["layers"]`)."""
        return {layer: self.tensor(layer) for layer in target.meta["layers"]}

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


class StopForward(Exception):
    """Raised on entering the block after the deepest requested layer: ends the forward there."""


class ForwardStop:
    """A hook that ends the forward on entering the block after layer `layer` (the block whose
    input is hidden state `layer`): by then every site's tensor of layers 0 … `layer` is captured,
    so the blocks after it, the final norm and any pooler never run. Create it after the
    SiteCaptures: hooks on one module run in the order they were registered, so a hidden-state
    capture of that same block keeps its input first."""

    def __init__(self, base_model: Any, model_type: str, layer: int) -> None:
        name, self.k = _calls(BLOCKS[model_type], base_model.config)[layer]
        self.entered = 0
        module = dict(base_model.named_modules())[name]
        self.handle = module.register_forward_pre_hook(self._enter)

    def _enter(self, _module: Any, _args: Any) -> None:
        self.entered += 1
        if self.entered > self.k:
            raise StopForward

    def clear(self) -> None:
        self.entered = 0

    def remove(self) -> None:
        self.handle.remove()


def _hook(module: Any, hook: str, keep: Callable[[Any], None]) -> Any:
    if hook == "input":
        return module.register_forward_pre_hook(lambda _m, args: keep(args[0]))
    return module.register_forward_hook(lambda _m, _args, output: keep(output))
