"""The LoRA baseline through peft: wrap, train the adapters, save them in peft's own format,
merge them into a plain model."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadRequest

# Attention projections per family (peft matches a target against the end of module names).
# MLP projections are left out by default: the baseline adapts what CT-SFT adapts, attention.
ATTENTION_TARGETS: dict[str, list[str]] = {
    "gpt2": ["c_attn"],
    "gpt_neox": ["query_key_value", "dense"],
    "bloom": ["query_key_value", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj"],
}
LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class LoraOptions:
    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] | None = None


@dataclass
class Lora:
    peft_model: Any
    options: LoraOptions
    targets: list[str]
    adapter_dir: Path | None = None
    _tmp: Any = field(default=None, repr=False)

    @property
    def inner(self) -> Any:
        """The transformers model with LoRA layers injected: what the training loop drives."""
        return self.peft_model.get_base_model()

    def trainable(self) -> list[Any]:
        return [p for p in self.peft_model.parameters() if p.requires_grad]

    def finish(self) -> Any:
        """Save the adapter (peft format) to a private temp dir, merge, return the plain model."""
        self._tmp = tempfile.TemporaryDirectory(prefix="ctsft-lora-")
        self.adapter_dir = Path(self._tmp.name) / "adapter"
        self.peft_model.save_pretrained(self.adapter_dir)
        return self.peft_model.merge_and_unload()

    def abort(self) -> Any:
        """Drop the adapters without merging (cancelled training): the base model as it was."""
        return self.peft_model.unload()


def wrap_lora(model: Any, family: str, options: LoraOptions) -> Lora:
    from peft import LoraConfig, get_peft_model

    targets = options.targets or ATTENTION_TARGETS.get(family, LLAMA_LIKE)
    if options.r < 1:
        raise BadRequest(f"lora.r must be at least 1, got {options.r}", path="lora.r")
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        raise BadRequest(
            f"LoRA target module(s) {missing} do not exist in this {family} model; "
            f"linear modules include {sorted(n for n in names if 'proj' in n or n in ('c_attn', 'dense'))}",
            path="lora.targets",
        )
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as e:
        raise BadRequest(f"peft refused the LoRA config: {e}", path="lora") from None
    return Lora(peft_model, options, targets)


@dataclass
class AppliedAdapter:
    """A merged LoRA adapter and the exact base values it overwrote (for a bit-exact revert:
    peft's own unmerge subtracts, which is not exact in floating point)."""

    path: str
    originals: dict[str, Any]


def apply_adapter(model: Any, adapter_dir: Path) -> tuple[Any, AppliedAdapter]:
    """Merge a peft LoRA adapter (peft's format) into `model`; returns the plain merged model."""
    import json

    from peft import PeftModel

    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"{adapter_dir} is not a peft adapter: adapter_config.json is not JSON ({e.msg}, line {e.lineno}, "
            f"column {e.colno})",
            path="delta",
        ) from None
    except (OSError, ValueError) as e:
        raise BadRequest(f"{adapter_dir} is not a peft adapter: {type(e).__name__}", path="delta") from None
    if not isinstance(config, dict):
        raise BadRequest(f"{adapter_dir} is not a peft adapter: adapter_config.json is not an object", path="delta")
    targets = config.get("target_modules") or []
    targets = [targets] if isinstance(targets, str) else list(targets)
    originals = {
        name: p.detach().clone()
        for name, p in model.named_parameters()
        if any(name.rsplit(".", 1)[0].endswith(t) for t in targets)
    }
    try:
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    except Exception as e:
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            raise
        # peft/safetensors messages may quote the adapter's config or tensor names.
        raise BadRequest(
            f"adapter {adapter_dir} does not fit this model or cannot be read: {type(e).__name__}: {e}",
            path="delta",
            remote_message=f"adapter {adapter_dir} does not fit this model or cannot be read ({type(e).__name__})",
        ) from None
    return merged, AppliedAdapter(str(adapter_dir), originals)


def revert_adapter(model: Any, applied: AppliedAdapter) -> None:
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in applied.originals.items():
            params[name].copy_(value)
