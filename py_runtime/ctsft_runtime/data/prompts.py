"""Prompt template and verbalizer: how a causal LM is asked to classify a text.

The class logits are the LM logits, at the last prompt position, of each label word's
first token (DESIGN 2.1). That only works if those first tokens differ between classes,
so `check_verbalizer` resolves them once, up front, and refuses ambiguous verbalizers
with a message naming the colliding labels and the shared token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadRequest

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TEXT_SLOT = "{text}"


@dataclass(frozen=True)
class PromptFormat:
    """`template` holds `{text}` exactly once; `verbalizer` maps label name -> word.

    With no verbalizer each label answers as its own name with a leading space
    (" positive"): the space makes it the word a BPE tokenizer would produce right after
    "Sentiment:". A given verbalizer must cover every label (checked where labels are
    known, see `words`). The template is filled by plain substitution, not `str.format`,
    so braces in texts or templates need no escaping.
    """

    template: str = "{text}\nSentiment:"
    verbalizer: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        count = self.template.count(TEXT_SLOT)
        if count != 1:
            raise BadRequest(
                f"template must contain {TEXT_SLOT} exactly once, found {count} in {self.template!r}",
                path="template",
                # The template may come from a checkpoint's ctsft.json.
                remote_message=f"template must contain {TEXT_SLOT} exactly once, found {count}",
            )

    @property
    def prefix(self) -> str:
        """Template text before the `{text}` slot."""
        return self.template.split(TEXT_SLOT, 1)[0]

    @property
    def suffix(self) -> str:
        """Template text after the `{text}` slot (where the answer is read)."""
        return self.template.split(TEXT_SLOT, 1)[1]

    def render(self, text: str) -> str:
        return self.prefix + text + self.suffix

    def words(self, label_names: Sequence[str]) -> list[str]:
        """The answer word of each label, in label order."""
        if self.verbalizer is None:
            return [" " + name for name in label_names]
        missing = [name for name in label_names if name not in self.verbalizer]
        if missing:
            extra = sorted(set(self.verbalizer) - set(label_names))
            hint = f"; it has words for {extra}, which are not labels" if extra else ""
            raise BadRequest(
                f"verbalizer has no word for label(s) {missing}{hint}",
                path="verbalizer",
                remote_message=f"verbalizer has no word for {len(missing)} of the {len(label_names)} labels",
            )
        empty = [name for name in label_names if not self.verbalizer[name]]
        if empty:
            raise BadRequest(
                f"verbalizer word for label(s) {empty} is empty",
                path="verbalizer",
                remote_message=f"verbalizer word for {len(empty)} label(s) is empty",
            )
        return [self.verbalizer[name] for name in label_names]


def check_verbalizer(tokenizer: PreTrainedTokenizerBase, fmt: PromptFormat, label_names: Sequence[str]) -> list[int]:
    """First token id of each label word (label order); errors if two labels share one.

    The word is tokenized in context, as the continuation of a rendered prompt, because
    that is the token the model would emit there: tokenizers that mark word starts
    (SentencePiece's "▁") or merge across the boundary can split a word differently on
    its own. When the prompt's own tokens change once the word is appended (a merge across
    the boundary), the word is tokenized alone instead.
    """
    words = fmt.words(label_names)
    prompt = fmt.render("")
    prompt_ids = _ids(tokenizer, prompt)
    first: list[int] = []
    for name, word in zip(label_names, words, strict=True):
        full = _ids(tokenizer, prompt + word)
        if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
            first.append(full[len(prompt_ids)])
            continue
        alone = _ids(tokenizer, word)
        if not alone:
            raise BadRequest(
                f"verbalizer word {word!r} of label {name!r} encodes to no token",
                path="verbalizer",
                remote_message=f"the verbalizer word of label {len(first)} (0-based) encodes to no token",
            )
        first.append(alone[0])

    by_token: dict[int, list[str]] = {}
    for name, tok in zip(label_names, first, strict=True):
        by_token.setdefault(tok, []).append(name)
    clashes = [(tok, names) for tok, names in by_token.items() if len(names) > 1]
    if clashes:
        parts = [
            f"labels {names} all start with token {tokenizer.convert_ids_to_tokens(tok)!r} (id {tok})"
            for tok, names in clashes
        ]
        hint = ". Pick label words whose first tokens differ (e.g. single common words)."
        raise BadRequest(
            "verbalizer words must start with distinct tokens: " + "; ".join(parts) + hint,
            path="verbalizer",
            # Label names (and so their words) may be read from a data file.
            remote_message=f"verbalizer words must start with distinct tokens: {len(clashes)} first token(s) "
            f"are shared by {sum(len(n) for _, n in clashes)} of the {len(label_names)} labels{hint}",
        )
    return first


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    # No special tokens: a BOS/EOS would sit between prompt and word and hide the answer.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
