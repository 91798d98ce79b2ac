"""Model ops: load, describe, save, create from scratch, release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec

from ..errors import BadRequest
from ..protocol.codec import camel
from .context import OpContext, Reply
from .fields import FieldMap, NonEmpty, Positive
from .registry import op
from .serving import refuse_named_deltas


class LoadBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    source: NonEmpty
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str | None = None  # default: the runtime's device
    trust_remote_code: bool = False
    allow_download: bool = False


class HandleBody(msgspec.Struct, forbid_unknown_fields=True):
    handle: str


class SaveBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    handle: str
    out: NonEmpty
    # Replace a non-empty folder ctsft did not write (never the root, the cwd or a parent).
    overwrite: bool = False
    # Only check that `out` may be written (the same rule as a save); write nothing.
    dry_run: bool = False


# The families the head map understands (src/schema/models.ts `Family`; FAMILY_SPECS).
Family = Literal["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gpt_neox", "phi3", "opt", "bloom"]


class CreateBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    family: Family
    layers: Positive
    heads: Positive
    d_model: Positive
    corpus: Annotated[list[str], msgspec.Meta(min_length=1)]
    out: NonEmpty
    vocab: Positive = 2000
    kv_heads: Positive | None = None
    d_ff: Positive | None = None
    seed: int = 0
    text_column: str | None = None
    fields: FieldMap | None = None  # pair-input files: every field's text goes into the corpus
    overwrite: bool = False


@op("model.load", LoadBody)
def load(ctx: OpContext, body: LoadBody) -> Reply:
    from ..models import load_model
    from .paths import model_source

    # A path (remote: under the root, every file in it too) or a hub id: see ops/paths.py.
    source = model_source(ctx.state.path_root, body.source, allow_download=body.allow_download)
    lm = load_model(
        source,
        dtype=body.dtype,
        device=body.device or ctx.state.device,
        trust_remote_code=body.trust_remote_code,
        allow_download=body.allow_download,
    )
    handle = ctx.state.add(ctx.state.models, "m", lm)
    return Reply({"handle": handle, "info": lm.info()})


@op("model.info", HandleBody)
def info(ctx: OpContext, body: HandleBody) -> Reply:
    return Reply(ctx.state.get(ctx.state.models, "model", body.handle, "handle").info())


@op("model.save", SaveBody)
def save(ctx: OpContext, body: SaveBody) -> Reply:
    from ..models.atomic import check_out_dir
    from ..models.saving import save_checkpoint

    lm = ctx.state.get(ctx.state.models, "model", body.handle, "handle")
    lm.require_valid(body.handle, "handle")  # never write a diverged run's weights
    out = ctx.state.check_path(body.out, "out")
    # The output rule (models/atomic.py): absent, empty or written by ctsft, unless
    # overwrite; never the path root, the working directory, home, or a parent of them.
    protected = (ctx.state.path_root,)
    if body.dry_run:
        check_out_dir(out, overwrite=body.overwrite, protected=protected, field="out")
        return Reply({"path": str(out), "delta": None, "adapter": None})
    written = save_checkpoint(lm, out, overwrite=body.overwrite, protected=protected, field="out")
    return Reply({"path": written["checkpoint"], "delta": written.get("delta"), "adapter": written.get("adapter")})


@op("model.create", CreateBody)
def create(ctx: OpContext, body: CreateBody) -> Reply:
    """A real HF checkpoint from scratch: the family's config, random weights, and a BPE
    tokenizer trained on the corpus (plain text lines, or the text column of labeled files, or
    with `fields` the text of every field)."""
    from ..data import load_labeled
    from ..models.new_model import build_checkpoint, label_words

    if not body.corpus:
        raise BadRequest("corpus is empty: give at least one text or labeled data file", path="corpus")
    texts: list[str] = []
    for i, raw in enumerate(body.corpus):
        path = ctx.state.check_path(raw, f"corpus.{i}", must_exist=True)
        if path.is_dir():
            raise BadRequest(f"corpus entry {raw!r} is a directory: name the files in it", path=f"corpus.{i}")
        if path.suffix in (".txt", ".text", ""):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as e:
                raise BadRequest(
                    f"corpus entry {raw!r} is not valid UTF-8 (byte {e.start}); re-save it as UTF-8", path=f"corpus.{i}"
                ) from e
            texts.extend(line for line in text.splitlines() if line.strip())
        else:
            labeled = load_labeled(path, text_column=body.text_column, fields=body.fields)
            for example in labeled.texts:
                texts.extend([example] if isinstance(example, str) else example.values())
            texts.extend(label_words(labeled.label_names))
    result = build_checkpoint(
        body.family,
        layers=body.layers,
        heads=body.heads,
        kv_heads=body.kv_heads,
        d_model=body.d_model,
        texts=texts,
        vocab_size=body.vocab,
        out_dir=ctx.state.check_path(body.out, "out"),
        seed=body.seed,
        d_ff=body.d_ff,
        overwrite=body.overwrite,
        protected=(ctx.state.path_root,),
        out_field="out",
    )
    return Reply({camel(k): v for k, v in result.items()})


class DeltaBody(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    delta: NonEmpty  # a delta directory (or a checkpoint directory holding `ctsft-delta/`)
    keep: bool = True  # apply: keep the delta with the model so `model.save` writes it beside


@op("delta.apply", DeltaBody)
def delta_apply(ctx: OpContext, body: DeltaBody) -> Reply:
    """θ1 -> θ2: write a CT-SFT delta's slices and norms into the model (fingerprint-checked),
    or merge a LoRA adapter (peft format) into it."""
    from ..artifacts import apply_delta

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    refuse_named_deltas(lm, body.model)
    adapter = _adapter_dir(ctx, body.delta)
    if adapter is not None:
        from ..heads import build_head_map
        from ..training.lora import apply_adapter

        if "adapter_applied" in lm.extra:
            raise BadRequest("a LoRA adapter is already merged into this model (revert it first)", path="delta")
        lm.model, applied = apply_adapter(lm.model, adapter)
        lm.head_map = build_head_map(lm.model)
        lm.extra["adapter_applied"] = applied
        n = sum(v.numel() for v in applied.originals.values())
        return Reply(
            {"entries": len(applied.originals), "params": n, "manifest": {"kind": "peft-lora", "path": str(adapter)}}
        )
    delta = _load_delta(ctx, body.delta)
    apply_delta(lm.model, delta)
    if body.keep:
        lm.extra["delta"] = delta
    return Reply({"entries": len(delta.entries), "params": delta.numel, "manifest": delta.manifest})


@op("delta.revert", DeltaBody)
def delta_revert(ctx: OpContext, body: DeltaBody) -> Reply:
    """θ2 -> θ1 bit-exactly: write a delta's recorded base values back, or restore the exact
    values a LoRA merge overwrote (known only to the runtime that merged it)."""
    from ..artifacts import revert_delta

    lm = ctx.state.get(ctx.state.models, "model", body.model, "model")
    lm.require_valid(body.model, "model")
    refuse_named_deltas(lm, body.model)
    if _adapter_dir(ctx, body.delta) is not None:
        from ..training.lora import revert_adapter

        applied = lm.extra.pop("adapter_applied", None)
        if applied is None:
            raise BadRequest(
                "no LoRA adapter was merged into this model in this runtime: a merge subtracts "
                "inexactly, so only the runtime that merged it can revert it exactly",
                path="delta",
            )
        revert_adapter(lm.model, applied)
        return Reply(
            {
                "entries": len(applied.originals),
                "params": sum(v.numel() for v in applied.originals.values()),
                "manifest": {"kind": "peft-lora", "path": applied.path},
            }
        )
    delta = _load_delta(ctx, body.delta)
    revert_delta(lm.model, delta)
    lm.extra.pop("delta", None)
    return Reply({"entries": len(delta.entries), "params": delta.numel, "manifest": delta.manifest})


def _adapter_dir(ctx: OpContext, raw: str) -> Path | None:
    """A peft adapter directory (or a checkpoint holding `lora-adapter/`), else None."""
    from ..models.saving import ADAPTER_DIR

    path = ctx.state.check_path(raw, "delta", must_exist=True)
    for d in (path, path / ADAPTER_DIR):
        if (d / "adapter_config.json").is_file():
            return d
    return None


def _load_delta(ctx: OpContext, raw: str):
    from ..artifacts import load_delta
    from ..models.saving import DELTA_DIR

    path = ctx.state.check_path(raw, "delta", must_exist=True)
    return load_delta(path / DELTA_DIR if (path / DELTA_DIR).is_dir() else path)


@op("release", HandleBody)
def release(ctx: OpContext, body: HandleBody) -> Reply:
    """Free a model or dataset handle (idempotent: releasing twice is not an error)."""
    return Reply({"released": ctx.state.release(body.handle)})
