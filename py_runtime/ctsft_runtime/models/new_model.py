"""Build a real Hugging Face checkpoint from scratch: family config, random init, BPE tokenizer.

No model hub is reachable here, yet every code path must take the same
`from_pretrained(dir)` road a user's checkpoint takes. So tests and demos build one:

- the family's own config class (`LlamaConfig`, `GPT2Config`, ...), sized as asked;
- seeded random weights from `AutoModelForCausalLM.from_config`, saved as safetensors;
- a byte-level BPE tokenizer trained with `tokenizers` on the caller's texts, wrapped
  as `PreTrainedTokenizerFast` and saved next to the weights;
- all written through `atomic_dir`, so a failed build never leaves a half checkpoint.

The result loads with plain `AutoModelForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` (no `trust_remote_code`). It is NOT a pretrained
model: `ctsft_build.json` in the folder records that, with the build arguments.

Tokenizer choices (same for every family, so the data layer sees one convention):

- Special tokens, in this id order: `<pad>`=0, `<s>`=1 (BOS), `</s>`=2 (EOS),
  `<unk>`=3. The config's pad/bos/eos ids are set to these. `<unk>` is never produced
  (byte-level BPE covers every byte) but is declared because some tools expect one.
- Byte-level, no prefix space, no normalizer: any string encodes, and decoding returns
  it byte for byte.
- BOS is prepended automatically only for llama, mistral, gemma and gemma2, whose
  reference (SentencePiece) tokenizers do so; nothing else is ever added (no EOS), the
  GPT-2 / Qwen / NeoX / Phi-3 / OPT / BLOOM way. (Real OPT tokenizers prepend `</s>`;
  we keep OPT in the simple group.) `data.encode_batch` keeps a leading BOS and drops
  trailing special tokens, so both groups batch the same way.
- The vocabulary starts from the 256 byte symbols, so `vocab_size` must be at least
  256 + 4 specials = 260; the trainer stops early when the texts offer no more merges
  (seen twice or more), so the size obtained can be below the one asked for. The
  config's `vocab_size` is always the size obtained, so no embedding row is unreachable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers as tf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

from ..errors import BadRequest
from ..heads import supported_model_types
from .atomic import atomic_dir, check_out_dir

__all__ = [
    "BOS",
    "BOS_ID",
    "BUILD_INFO_FILE",
    "EOS",
    "EOS_ID",
    "FAMILY_SPECS",
    "MIN_VOCAB",
    "PAD",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK",
    "FamilySpec",
    "Geometry",
    "build_checkpoint",
    "family_config",
    "init_model",
    "label_words",
    "resolve_geometry",
    "train_tokenizer",
]

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
"""Trained first, so their ids are their positions here: pad 0, bos 1, eos 2, unk 3."""
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
BYTE_ALPHABET = 256
MIN_VOCAB = BYTE_ALPHABET + len(SPECIAL_TOKENS)
ROPE_THETA = 10_000.0  # the classic Llama/NeoX base; ample for contexts of a few hundred tokens
BUILD_INFO_FILE = "ctsft_build.json"


@dataclass(frozen=True)
class Geometry:
    """A validated model shape (every field already checked against the family)."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    d_model: int
    d_ff: int
    max_positions: int


@dataclass(frozen=True)
class FamilySpec:
    """How to size one family's config class, and which knobs it has.

    `kwargs(geometry)` returns the config's shape fields under the family's own names;
    token ids and vocab size are added by `family_config`, the same for every family.
    """

    config_cls: type[PretrainedConfig]
    kwargs: Callable[[Geometry], dict[str, Any]]
    gqa: bool
    """Has `num_key_value_heads` (grouped/multi-query attention)."""
    head_dim_field: bool
    """Has a `head_dim` field, so n_heads * head_dim may differ from d_model."""
    d_ff_field: bool
    """Has an MLP width field; without one (BLOOM) the width is fixed at 4 * d_model."""
    rope: bool
    """Rotary positions, which split each head in halves: head_dim must be even."""
    add_bos: bool
    """Its reference tokenizer prepends BOS (see the module doc)."""


def _rope() -> dict[str, Any]:
    # Passed as a dict, merged by the config with family extras (NeoX's partial factor).
    return {"rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA}}


def _llama_like(g: Geometry) -> dict[str, Any]:
    return {
        "hidden_size": g.d_model,
        "intermediate_size": g.d_ff,
        "num_hidden_layers": g.layers,
        "num_attention_heads": g.heads,
        "num_key_value_heads": g.kv_heads,
        "max_position_embeddings": g.max_positions,
        **_rope(),
    }


def _with_head_dim(g: Geometry) -> dict[str, Any]:
    return {**_llama_like(g), "head_dim": g.head_dim}


def _gemma2(g: Geometry) -> dict[str, Any]:
    # Gemma2 scales scores by query_pre_attn_scalar ** -0.5; released models set it to
    # head_dim, and the default (256) would silently mis-scale a small head.
    return {**_with_head_dim(g), "query_pre_attn_scalar": g.head_dim}


def _phi3(g: Geometry) -> dict[str, Any]:
    # original_max_position_embeddings only matters for long-rope scaling (off here);
    # keep it equal so the config does not claim a longer pretraining context.
    return {**_llama_like(g), "original_max_position_embeddings": g.max_positions}


def _gpt2(g: Geometry) -> dict[str, Any]:
    return {
        "n_embd": g.d_model,
        "n_inner": g.d_ff,
        "n_layer": g.layers,
        "n_head": g.heads,
        "n_positions": g.max_positions,
    }


def _gpt_neox(g: Geometry) -> dict[str, Any]:
    return {
        "hidden_size": g.d_model,
        "intermediate_size": g.d_ff,
        "num_hidden_layers": g.layers,
        "num_attention_heads": g.heads,
        "max_position_embeddings": g.max_positions,
        **_rope(),
    }


def _opt(g: Geometry) -> dict[str, Any]:
    # word_embed_proj_dim = d_model: no project_in/out layers (only OPT-350m has them).
    return {
        "hidden_size": g.d_model,
        "ffn_dim": g.d_ff,
        "num_hidden_layers": g.layers,
        "num_attention_heads": g.heads,
        "max_position_embeddings": g.max_positions,
        "word_embed_proj_dim": g.d_model,
    }


def _bloom(g: Geometry) -> dict[str, Any]:
    # ALiBi: no position table, so max_positions only reaches the tokenizer.
    return {"hidden_size": g.d_model, "n_layer": g.layers, "n_head": g.heads}


def _spec(
    cls: type[PretrainedConfig],
    kwargs: Callable[[Geometry], dict[str, Any]],
    *,
    gqa: bool = False,
    head_dim_field: bool = False,
    d_ff_field: bool = True,
    rope: bool = False,
    add_bos: bool = False,
) -> FamilySpec:
    return FamilySpec(cls, kwargs, gqa, head_dim_field, d_ff_field, rope, add_bos)


# Keys are `config.model_type`, i.e. the names `heads.supported_model_types()` uses.
# Tied embeddings follow each config class's own default (gpt2, gemma, gemma2, opt,
# bloom tie; llama, mistral, qwen2, qwen3, gpt_neox, phi3 do not).
FAMILY_SPECS: dict[str, FamilySpec] = {
    "gpt2": _spec(tf.GPT2Config, _gpt2),
    "llama": _spec(tf.LlamaConfig, _with_head_dim, gqa=True, head_dim_field=True, rope=True, add_bos=True),
    "mistral": _spec(tf.MistralConfig, _with_head_dim, gqa=True, head_dim_field=True, rope=True, add_bos=True),
    "qwen2": _spec(tf.Qwen2Config, _llama_like, gqa=True, rope=True),
    "qwen3": _spec(tf.Qwen3Config, _with_head_dim, gqa=True, head_dim_field=True, rope=True),
    "gemma": _spec(tf.GemmaConfig, _with_head_dim, gqa=True, head_dim_field=True, rope=True, add_bos=True),
    "gemma2": _spec(tf.Gemma2Config, _gemma2, gqa=True, head_dim_field=True, rope=True, add_bos=True),
    "gpt_neox": _spec(tf.GPTNeoXConfig, _gpt_neox, rope=True),
    "phi3": _spec(tf.Phi3Config, _phi3, gqa=True, rope=True),
    "opt": _spec(tf.OPTConfig, _opt),
    "bloom": _spec(tf.BloomConfig, _bloom, d_ff_field=False),
}


def _family(family: str) -> tuple[str, FamilySpec]:
    """Normalise a CLI family name ("GPT-NeoX" -> "gpt_neox") and look it up."""
    if not isinstance(family, str):
        raise BadRequest(f"family must be a string, got {type(family).__name__}", path="family")
    key = family.strip().lower().replace("-", "_")
    # Only families the head map understands are offered: a checkpoint we cannot map is
    # of no use to the rest of the runtime.
    supported = [f for f in supported_model_types() if f in FAMILY_SPECS]
    if key not in supported:
        raise BadRequest(f"unknown model family {family!r}; supported: {', '.join(supported)}", path="family")
    return key, FAMILY_SPECS[key]


def _positive_int(value: object, path: str, *, minimum: int = 1) -> int:
    # bool is an int subclass; True as a layer count is a caller bug, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{path} must be an integer, got {value!r}", path=path)
    if value < minimum:
        raise BadRequest(f"{path} must be at least {minimum}, got {value}", path=path)
    return value


def resolve_geometry(
    family: str,
    *,
    layers: int,
    heads: int,
    kv_heads: int | None,
    d_model: int,
    d_ff: int | None = None,
    head_dim: int | None = None,
    max_positions: int = 512,
) -> Geometry:
    """Check a requested shape against the family and fill in defaults.

    Defaults: kv_heads = heads, d_ff = 4 * d_model, head_dim = d_model // heads.
    Families without a `head_dim` field need heads to divide d_model (their head_dim is
    derived that way); families with one accept any head_dim, and then only need heads
    to divide d_model when head_dim is left to its default.
    """
    name, spec = _family(family)
    layers = _positive_int(layers, "layers")
    heads = _positive_int(heads, "heads")
    d_model = _positive_int(d_model, "d_model")
    max_positions = _positive_int(max_positions, "max_positions")

    if kv_heads is None:
        kv_heads = heads
    kv_heads = _positive_int(kv_heads, "kv_heads")
    if not spec.gqa and kv_heads != heads:
        raise BadRequest(
            f"{name} has no grouped-query attention: kv_heads must equal heads ({heads}) or be omitted, got {kv_heads}",
            path="kv_heads",
        )
    if heads % kv_heads:
        raise BadRequest(f"kv_heads ({kv_heads}) must divide heads ({heads})", path="kv_heads")

    if head_dim is None:
        if d_model % heads:
            fix = " or give head_dim" if spec.head_dim_field else ""
            raise BadRequest(f"heads ({heads}) must divide d_model ({d_model}) for {name}{fix}", path="heads")
        head_dim = d_model // heads
    else:
        head_dim = _positive_int(head_dim, "head_dim")
        if not spec.head_dim_field and head_dim * heads != d_model:
            raise BadRequest(
                f"{name} derives head_dim as d_model / heads = {d_model / heads:g}; it cannot be set to {head_dim}",
                path="head_dim",
            )
    if spec.rope and head_dim % 2:
        raise BadRequest(f"{name} uses rotary positions, which need an even head_dim; got {head_dim}", path="head_dim")

    if d_ff is None:
        d_ff = 4 * d_model
    d_ff = _positive_int(d_ff, "d_ff")
    if not spec.d_ff_field and d_ff != 4 * d_model:
        raise BadRequest(f"{name} fixes the MLP width at 4 * d_model = {4 * d_model}; got d_ff={d_ff}", path="d_ff")
    return Geometry(layers, heads, kv_heads, head_dim, d_model, d_ff, max_positions)


def family_config(family: str, geometry: Geometry, vocab_size: int) -> PretrainedConfig:
    """The family's config class at `geometry`, with our special-token ids."""
    name, spec = _family(family)
    vocab_size = _positive_int(vocab_size, "vocab_size", minimum=MIN_VOCAB)
    kwargs = {
        **spec.kwargs(geometry),
        "vocab_size": vocab_size,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
    }
    try:
        return spec.config_cls(**kwargs)
    except Exception as exc:
        # The class's own validators: ValueError in 4.x, huggingface_hub's
        # StrictDataclassError (not a ValueError) in 5.x. Only our kwargs went in, so any
        # failure here means "this shape is not valid for the family".
        raise BadRequest(f"{name} config rejected this shape: {exc}", path="family", detail=repr(kwargs)) from exc


def init_model(config: PretrainedConfig, seed: int = 0) -> PreTrainedModel:
    """A float32 causal LM with seeded random weights, in eval mode.

    The seed is applied on a forked RNG, so the caller's global torch RNG state is left
    as it was: building a model must not change what a later training run samples.
    """
    seed = _positive_int(seed, "seed", minimum=0)
    if seed >= 2**63:
        raise BadRequest(f"seed must be below 2**63, got {seed}", path="seed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def _collect_texts(texts: Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        # A bare string would iterate as characters: certainly not what was meant.
        raise BadRequest("texts must be an iterable of strings, not one string", path="texts")
    try:
        items = list(texts)
    except TypeError as exc:
        raise BadRequest(f"texts must be an iterable of strings, got {type(texts).__name__}", path="texts") from exc
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise BadRequest(f"texts[{i}] must be a string, got {type(t).__name__}", path=f"texts[{i}]")
    if not any(items):
        raise BadRequest("texts is empty; the tokenizer needs some text to train on", path="texts")
    return items


def label_words(label_names: Iterable[str], repeat: int = 8) -> list[str]:
    """Extra corpus lines that make the tokenizer learn each label name as one word.

    The class logit is read at a label word's first token; a BPE trained only on review text
    would split " negative" and " neutral" into pieces sharing the first token " n", and the
    default verbalizer would collide. BPE merges need a pair seen at least twice, hence `repeat`.
    """
    return [f" {name}" for name in label_names for _ in range(repeat)]


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, add_bos: bool = False, max_positions: int = 512
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts` (see the module doc for the conventions)."""
    items = _collect_texts(texts)
    vocab_size = _positive_int(vocab_size, "vocab_size", minimum=MIN_VOCAB)
    max_positions = _positive_int(max_positions, "max_positions")

    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte is in the vocabulary even if the texts never use it, so later text
        # (another language, an emoji) still encodes instead of failing.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        # A merge seen once is memorising one word, not learning a piece.
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(items, trainer)
    for token, want in zip(SPECIAL_TOKENS, range(len(SPECIAL_TOKENS)), strict=True):
        got = tok.token_to_id(token)
        if got != want:  # the trainer's contract; checked because every config relies on it
            raise AssertionError(f"special token {token!r} got id {got}, expected {want}")

    # ByteLevel trims the leading-space byte out of offsets, which encode_batch uses to
    # locate the text inside a prompt.
    byte_level = processors.ByteLevel(trim_offsets=True)
    if add_bos:
        tok.post_processor = processors.Sequence(
            [
                byte_level,
                processors.TemplateProcessing(
                    single=f"{BOS} $A", pair=f"{BOS} $A {BOS}:1 $B:1", special_tokens=[(BOS, BOS_ID)]
                ),
            ]
        )
    else:
        tok.post_processor = byte_level
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        model_max_length=max_positions,
        padding_side="right",
        # Decoding must give back the exact text; the "clean up" pass removes spaces.
        clean_up_tokenization_spaces=False,
    )


def _save_tokenizer(tokenizer: PreTrainedTokenizerFast, folder: Path) -> None:
    tokenizer.save_pretrained(folder)
    # transformers 5 records its internal class name ("TokenizersBackend"); the public
    # alias loads in 4.x and 5.x alike, and pins the class so AutoTokenizer never swaps in
    # a family tokenizer (e.g. a SentencePiece-style Llama one) that rebuilds ours.
    config_file = folder / "tokenizer_config.json"
    data = json.loads(config_file.read_text(encoding="utf-8"))
    data["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_checkpoint(
    family: str,
    *,
    layers: int,
    heads: int,
    kv_heads: int | None,
    d_model: int,
    texts: Iterable[str],
    vocab_size: int,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    d_ff: int | None = None,
    max_positions: int = 512,
    head_dim: int | None = None,
    overwrite: bool = False,
    protected: Iterable[str | os.PathLike[str] | None] = (),
    out_field: str = "out_dir",
) -> dict[str, Any]:
    """Write a from-scratch checkpoint of `family` to `out_dir`; returns a summary.

    `out_dir` is written atomically, under the output rule of `models.atomic`: it must be
    absent, empty or a folder ctsft wrote (it may hold someone's real model), unless
    `overwrite=True`; `protected` paths and their parents are never replaced. Refusals
    name `out_field`. Same arguments and seed give byte-identical weights and tokenizer.

    Returned dict: family, path, params (unique parameters, tied counted once),
    vocab_size (obtained), requested_vocab_size, layers, heads, kv_heads, head_dim,
    d_model, d_ff, max_positions, tie_word_embeddings, add_bos, special_tokens, seed.
    """
    name, spec = _family(family)
    geometry = resolve_geometry(
        name,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        d_model=d_model,
        d_ff=d_ff,
        head_dim=head_dim,
        max_positions=max_positions,
    )
    vocab_size = _positive_int(vocab_size, "vocab_size", minimum=MIN_VOCAB)
    seed = _positive_int(seed, "seed", minimum=0)
    target = _check_out_dir(out_dir, overwrite, protected, out_field)
    # Texts last among the checks: collecting them may consume a one-shot iterator.
    items = _collect_texts(texts)

    tokenizer = train_tokenizer(items, vocab_size, add_bos=spec.add_bos, max_positions=geometry.max_positions)
    config = family_config(name, geometry, len(tokenizer))
    model = init_model(config, seed)
    info: dict[str, Any] = {
        "family": name,
        "path": str(target.absolute()),
        "params": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "requested_vocab_size": vocab_size,
        "layers": geometry.layers,
        "heads": geometry.heads,
        "kv_heads": geometry.kv_heads,
        "head_dim": geometry.head_dim,
        "d_model": geometry.d_model,
        "d_ff": geometry.d_ff,
        "max_positions": geometry.max_positions,
        "tie_word_embeddings": bool(getattr(config, "tie_word_embeddings", False)),
        "add_bos": spec.add_bos,
        "special_tokens": {"pad": PAD_ID, "bos": BOS_ID, "eos": EOS_ID, "unk": SPECIAL_TOKENS.index(UNK)},
        "seed": seed,
    }
    rule = {"overwrite": overwrite, "protected": tuple(protected), "field": out_field}
    with atomic_dir(target, kind="checkpoint", **rule) as tmp:
        # transformers 5 always writes safetensors (4.x does by default); the tests check
        # that no pickle-based weight file appears.
        model.save_pretrained(tmp)
        _save_tokenizer(tokenizer, tmp)
        provenance = {
            "note": "random-init checkpoint built by ctsft (not pretrained)",
            **{k: v for k, v in info.items() if k != "path"},
            "n_texts": len(items),
            "transformers": tf.__version__,
        }
        (tmp / BUILD_INFO_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return info


def _check_out_dir(
    out_dir: str | os.PathLike[str],
    overwrite: bool,
    protected: Iterable[str | os.PathLike[str] | None],
    field: str,
) -> Path:
    # Checked up front (before the tokenizer is trained), by the same rule `atomic_dir`
    # applies again when it publishes.
    try:
        target = Path(out_dir)
    except TypeError as exc:
        raise BadRequest(f"{field} must be a path, got {type(out_dir).__name__}", path=field) from exc
    check_out_dir(target, overwrite=overwrite, protected=protected, field=field)
    return target
