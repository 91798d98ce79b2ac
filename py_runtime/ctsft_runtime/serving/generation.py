"""Text generation through transformers' own `generate`, streamed as decoded text pieces.

transformers drives the loop (sampling, KV cache, stop strings); this module adds what
serving needs around it:

- `TokenStreamer` (a `BaseStreamer`: `generate` calls `put` synchronously after every step)
  decodes each row's new tokens incrementally and hands out text pieces. A piece is held
  back while it ends in U+FFFD (a multi-byte character split across tokens) or while its
  tail could be the start of a stop string, so the pieces of a row always concatenate to
  its final text and never show a stop string. With `interval_s`, it decodes and hands out
  at most once per interval (the first token at once, the rest at the end): see the class.
- `_Cancel` (a `StoppingCriteria`, called once per step) runs the caller's cancellation
  check, which raises: a cancel stops generation within one token.
- Per row finish reasons: "eos" (the model's end token, not part of the text), "stop" (the
  text is cut just BEFORE the first stop string, as OpenAI-style APIs do; the tokens that
  completed it are counted), "length" (`max_new_tokens` reached).

Batched prompts are left-padded (the tokenizer's padding side is switched for the call
only), as decoder-only generation needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers.generation.stopping_criteria import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from ..errors import BadRequest

FinishReason = Literal["length", "stop", "eos"]
# (prompt index, new text, tokens generated so far for that prompt)
OnPiece = Callable[[int, str, int], None]


@dataclass
class Generated:
    text: str
    tokens: int  # generated tokens, the finishing eos or stop tokens included
    ids: list[int]  # those tokens
    finish_reason: FinishReason


@dataclass
class _Row:
    tail: str  # the prompt's last characters: a stop string may start inside the prompt
    ids: list[int] = field(default_factory=list)
    text: str = ""  # decoded so far (complete characters only)
    emitted: int = 0  # characters of `text` that can no longer change (safe to hand out)
    sent: int = 0  # characters of `text` handed to `on_piece`
    prefix: int = 0  # ids[prefix:read] decode to the end of `text` (incremental decoding)
    read: int = 0
    text_ids: int = 0  # ids that are text (an eos is not)
    done: FinishReason | None = None


class TokenStreamer(BaseStreamer):
    """With `interval_s` > 0, tokens are only collected between decodes: the rows are decoded
    and their new text handed to `on_piece` when `interval_s` has passed since the last time
    (the first token at once, whatever is left at `end`), so each call hands out what every
    row decoded since. Why: decoding costs ~30 µs a token in generate's loop and each piece
    becomes an event that wakes the I/O thread and the client; on a small model on a CPU
    (a token every ~2 ms) that was ~5% of generation (docs/benchmarks.md, Serving). With stop
    strings every token is still decoded as it comes, so that a row's tokens end at the one
    that completed its stop string; only the handing out waits for the interval."""

    def __init__(
        self,
        tokenizer: Any,
        prompts: Sequence[str],
        *,
        stop: Sequence[str] = (),
        eos_ids: set[int] | frozenset[int] = frozenset(),
        on_piece: OnPiece | None = None,
        interval_s: float = 0.0,
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.eos_ids = set(eos_ids)
        self.on_piece = on_piece
        self.interval_s = interval_s
        self._last = -math.inf
        longest = max((len(s) for s in self.stop), default=1)
        self.rows = [_Row(tail=p[len(p) - longest + 1 :] if longest > 1 else "") for p in prompts]
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True  # generate's first call hands over the prompt ids
            return
        tokens = value.reshape(len(self.rows), -1)[:, -1].tolist()
        for row, tok in zip(self.rows, tokens, strict=True):
            if row.done is not None:
                continue  # finished rows get pad tokens until the batch ends
            row.ids.append(int(tok))
            if tok in self.eos_ids:
                row.done = "eos"
            else:
                row.text_ids = len(row.ids)
                if self.stop:
                    self._decode(row, final=False)
                    self._advance(row)
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            if not self.stop:
                for row in self.rows:
                    if row.done != "stop" and row.read < row.text_ids:
                        self._decode(row, final=False)
                        self._advance(row)
            self._hand_out()

    def end(self) -> None:
        for row in self.rows:
            if row.done != "stop":
                self._decode(row, final=True)  # keep what is left, even a lone U+FFFD
                self._advance(row, final=True)
            if row.done is None:
                row.done = "length"
        self._hand_out()

    def outputs(self) -> list[Generated]:
        return [
            Generated(row.text[: row.emitted], len(row.ids), list(row.ids), row.done or "length") for row in self.rows
        ]

    def _hand_out(self) -> None:
        for i, row in enumerate(self.rows):
            if row.emitted > row.sent:
                piece = row.text[row.sent : row.emitted]
                row.sent = row.emitted
                if self.on_piece is not None:
                    self.on_piece(i, piece, len(row.ids))

    def _decode(self, row: _Row, *, final: bool) -> None:
        """Extend `row.text` by the complete characters the new ids add (TGI-style offsets:
        decoding from a few tokens back keeps the spacing a tokenizer derives from context)."""
        ids = row.ids[: row.text_ids]
        before = self.tokenizer.decode(ids[row.prefix : row.read], skip_special_tokens=True)
        after = self.tokenizer.decode(ids[row.prefix :], skip_special_tokens=True)
        if len(after) > len(before) and (final or not after.endswith("\ufffd")):
            row.text += after[len(before) :]
            row.prefix, row.read = row.read, len(ids)

    def _advance(self, row: _Row, *, final: bool = False) -> None:
        """Cut at a stop string, or mark what cannot become one as safe to hand out."""
        seen = row.tail + row.text
        hits = [p for p in (seen.find(s) for s in self.stop) if p >= 0]
        if hits:
            row.text = row.text[: max(0, min(hits) - len(row.tail))]
            row.done = "stop"
            safe = len(row.text)
        elif final:
            safe = len(row.text)
        else:
            hold = max((k for s in self.stop for k in range(1, len(s)) if seen.endswith(s[:k])), default=0)
            safe = len(row.text) - min(hold, len(row.text))
        row.emitted = max(row.emitted, safe)


class _Cancel(StoppingCriteria):
    """Runs the caller's cancellation check every step; the check raises to stop."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        self.check()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


def eos_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """The end tokens generation stops at: the generation config's (int or list), else the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return set()
    return {int(t) for t in (configured if isinstance(configured, (list, tuple)) else [configured])}


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Left-padded `input_ids` / `attention_mask` for generation; the tokenizer's padding
    side and pad token are restored afterwards."""
    side, pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    try:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = pad
    lengths = enc["attention_mask"].sum(-1).tolist()
    for i, n in enumerate(lengths):
        if n == 0:
            raise BadRequest(
                f"prompt {i} encodes to no tokens (the tokenizer adds no BOS): give it some text",
                path=f"prompts.{i}",
            )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def sampling_kwargs(
    temperature: float, top_p: float, top_k: int | None, *, stop: Sequence[str] | None, tokenizer: Any
) -> dict[str, Any]:
    """The `generate` arguments for these settings. Temperature 0 is greedy; when sampling,
    an absent `top_k` means no top-k filter (0), not the checkpoint's default, so the
    request alone decides what is sampled."""
    kw: dict[str, Any] = (
        {"do_sample": False}
        if temperature == 0
        else {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k or 0}
    )
    if stop:
        kw.update(stop_strings=list(stop), tokenizer=tokenizer)
    return kw


@torch.no_grad()
def generate_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int | None = None,
    stop: Sequence[str] | None = None,
    seed: int | None = None,
    on_piece: OnPiece | None = None,
    interval_s: float = 0.0,
    check: Callable[[], None] = lambda: None,
) -> list[Generated]:
    """Continue each prompt (one batch) with `model.generate`; `on_piece` gets text as it decodes
    (at most once per `interval_s`, see `TokenStreamer`)."""
    import transformers

    if max_new_tokens < 1:
        raise BadRequest(f"max_new_tokens must be at least 1, got {max_new_tokens}", path="max_new_tokens")
    if temperature < 0:
        raise BadRequest(f"temperature must be >= 0, got {temperature}", path="temperature")
    enc = encode_prompts(tokenizer, prompts)
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    width = enc["input_ids"].shape[1]
    if limit is not None and width + max_new_tokens > limit:
        raise BadRequest(
            f"the longest prompt has {width} tokens; with max_new_tokens={max_new_tokens} that passes the model's "
            f"{limit} positions",
            path="max_new_tokens",
        )
    eos = eos_token_ids(model, tokenizer)
    streamer = TokenStreamer(tokenizer, prompts, stop=stop or (), eos_ids=eos, on_piece=on_piece, interval_s=interval_s)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(sorted(eos)), 0)
    if seed is not None:
        transformers.set_seed(seed)
    was_training = model.training
    model.eval()
    try:
        model.generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=sorted(eos) or None,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Cancel(check)]),
            **sampling_kwargs(temperature, top_p, top_k, stop=stop, tokenizer=tokenizer),
        )
    finally:
        model.train(was_training)
    return streamer.outputs()
