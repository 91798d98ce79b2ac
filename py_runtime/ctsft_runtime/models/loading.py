"""Load a Hugging Face causal LM (local directory, GGUF file, or cached hub id) with its
tokenizer, head map and task config."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import BadRequest, NonFinite
from ..heads import HeadMap, build_head_map
from .devices import dtype_name, resolve_device, resolve_dtype
from .gguf import load_gguf, resolve_gguf
from .task import TaskConfig


@dataclass
class LoadedModel:
    """A model held by the runtime: weights, tokenizer, head map, and the task it knows."""

    model: Any  # transformers.PreTrainedModel
    tokenizer: Any  # transformers.PreTrainedTokenizerFast
    head_map: HeadMap
    source: str
    task: TaskConfig | None = None
    load_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    # Why the weights are unusable (a full fine-tuning run that diverged), else None.
    invalid: str | None = None

    def invalidate(self, reason: str) -> None:
        """Mark the weights unusable: `require_valid` refuses the model from now on."""
        self.invalid = reason

    def require_valid(self, handle: str, field: str = "model") -> None:
        """Refuse (NonFinite) a model whose weights a diverged training run left invalid."""
        if self.invalid is not None:
            raise NonFinite(
                f"model {handle} holds invalid weights since {self.invalid}; release it and load the checkpoint again",
                path=field,
            )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def info(self) -> dict[str, Any]:
        hm = self.head_map
        params = sum(p.numel() for p in self.model.parameters())
        return {
            "source": self.source,
            "family": hm.family,
            "layers": hm.n_layers,
            "heads": hm.n_heads,
            "kvHeads": hm.n_kv_heads,
            "headDim": hm.head_dim,
            "dModel": hm.d_model,
            "vocabSize": int(self.model.get_input_embeddings().weight.shape[0]),
            "params": params,
            "device": str(self.device),
            "dtype": dtype_name(next(self.model.parameters()).dtype),
            "task": None
            if self.task is None
            else {
                "template": self.task.template,
                "verbalizer": self.task.verbalizer,
                "labels": self.task.label_names,
                "fields": self.task.fields,
            },
            "loadSeconds": self.load_seconds,
        }


def load_model(
    source: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    allow_download: bool = False,
) -> LoadedModel:
    """`source`: a checkpoint directory, a `.gguf` file, or a hub id already in the local
    cache (downloads only with `allow_download`, since most of our hosts have no hub)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    started = time.perf_counter()
    path = Path(source).expanduser()
    if resolve_gguf(path) is not None:
        model, tokenizer = load_gguf(path, dt, dev)
        task = None
    else:
        local = path.is_dir()
        if not local and (path.exists() or source.startswith((".", "/", "~"))):
            raise BadRequest(f"model path {source!r} is not a checkpoint directory", path="source")
        if local and not (path / "config.json").is_file():
            raise BadRequest(f"{source!r} has no config.json: not a Hugging Face checkpoint directory", path="source")
        where = str(path) if local else source
        kwargs = {"trust_remote_code": trust_remote_code, "local_files_only": local or not allow_download}
        try:
            tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=dt, **kwargs)
        except Exception as e:
            if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
                raise  # the server reports these as out_of_memory
            if isinstance(e, OSError) and not local and not allow_download:
                raise BadRequest(
                    f"model {source!r} is not a local directory and could not be resolved in the local Hugging "
                    "Face cache; downloads are off (pass allowDownload to permit them, or give a checkpoint "
                    "directory)",
                    path="source",
                    detail=str(e),
                    remote_message=f"model {source!r} is not a local directory and could not be resolved in the "
                    "server's Hugging Face cache; downloads are off (pass allowDownload to permit them)",
                ) from None
            raise unreadable_checkpoint(source, e) from None
        task = TaskConfig.read(path) if local else None
    model.to(dev)
    model.eval()
    if tokenizer.pad_token_id is None:
        # Causal LMs often ship without a pad token; pads are masked and never read.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    head_map = build_head_map(model)
    return LoadedModel(model, tokenizer, head_map, str(source), task, time.perf_counter() - started)


def unreadable_checkpoint(source: str, e: Exception) -> BadRequest:
    """A checkpoint transformers/safetensors/torch could not read, as a BadRequest on `source`.

    The library's own message can quote the files (a config value, a JSON snippet, the
    globals a pickle names), so `remote_message` gives only the kind of failure."""
    from pickle import UnpicklingError

    from safetensors import SafetensorError

    if isinstance(e, SafetensorError):
        what = "a weights file is not a readable safetensors file (truncated or corrupt?)"
    elif isinstance(e, UnpicklingError):
        what = (
            "refused to unpickle its pickle-format weights (torch.load with weights_only: the file holds "
            "objects other than tensors); convert the checkpoint to safetensors"
        )
    elif isinstance(e, json.JSONDecodeError):
        what = f"one of its JSON files is not valid JSON ({e.msg}, line {e.lineno}, column {e.colno})"
    elif isinstance(e, KeyError):
        what = f"one of its files lacks a field the loader needs ({type(e).__name__})"
    elif isinstance(e, OSError):
        what = "a file of the checkpoint could not be read or is missing"
    else:
        what = f"transformers refused the checkpoint ({type(e).__name__})"
    return BadRequest(
        f"could not load {source!r}: {what}: {type(e).__name__}: {e}",
        path="source",
        remote_message=f"could not load {source!r}: {what}",
    )
