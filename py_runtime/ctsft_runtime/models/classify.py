"""Class logits of a causal LM: the LM logits of each label word's first token, read at the
last prompt position (DESIGN 2.1).

Only the rows of the output embedding that belong to the label tokens are multiplied, at
only the last positions: a [B, T, V] logits tensor for a 49k vocabulary would cost more
memory than the rest of the step. `full_vocab=True` gives the [B, V] logits instead, for
the vocabulary-wide loss option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..data import PromptFormat, check_verbalizer


def label_token_ids(tokenizer: Any, fmt: PromptFormat, label_names: Sequence[str]) -> list[int]:
    """First token of each label word, checked distinct (see `check_verbalizer`)."""
    return check_verbalizer(tokenizer, fmt, label_names)


def last_hidden(
    model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, last_index: torch.Tensor
) -> torch.Tensor:
    """Final hidden state (after the final norm) at each row's last prompt token: [B, D]."""
    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    hidden = out.last_hidden_state  # [B, T, D]
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_index]


def class_logits(
    model: Any,
    enc: dict[str, torch.Tensor],
    token_ids: Sequence[int] | None,
) -> torch.Tensor:
    """[B, C] logits of the label tokens (or [B, V] when `token_ids` is None)."""
    device = next(model.parameters()).device
    h = last_hidden(model, enc["input_ids"].to(device), enc["attention_mask"].to(device), enc["last_index"].to(device))
    head = model.get_output_embeddings()
    weight = head.weight if token_ids is None else head.weight[list(token_ids)]  # [C, D]
    logits = h @ weight.T
    bias = getattr(head, "bias", None)
    if bias is not None:
        logits = logits + (bias if token_ids is None else bias[list(token_ids)])
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        # Gemma 2 squashes its logits; monotonic per element, so it commutes with the gather.
        logits = torch.tanh(logits / cap) * cap
    return logits
