"""Prompt template and verbalizer: how a causal LM is asked to classify a text (or a record
of named fields, such as an NLI premise and hypothesis).

The class logits are the LM logits, at the last prompt position, of each label word's
first token (DESIGN 2.1). That only works if those first tokens differ between classes,
so `check_verbalizer` resolves them once, up front, and refuses ambiguous verbalizers
with a message naming the colliding labels and the shared token.

Two kinds of template:
- single text (`fields` None): `{text}` exactly once; any other braces are plain text.
- named fields (`fields` given, e.g. ("premise", "hypothesis")): `{name}` exactly once per
  field. Every other `{identifier}` is an error naming it, since with several slots a
  leftover one is almost always a typo or a field the data does not map.
Slots are filled by plain substitution, in one pass, not `str.format`: braces inside the
values are never read as slots and need no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import BadRequest
from ..slots import FIELD_NAME, SLOT, slot_names

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TEXT_SLOT = "{text}"
# A field name, and so a slot `{name}`: an identifier (letters, digits, _; no leading digit).

# One example's input: the text of a single-text task, or field name -> value.
Example = str | Mapping[str, str]


@dataclass(frozen=True)
class PromptFormat:
    """`template` holds `{text}` exactly once, or with `fields` one `{name}` per field;
    `verbalizer` maps label name -> word.

    With no verbalizer each label answers as its own name with a leading space
    (" positive"): the space makes it the word a BPE tokenizer would produce right after
    "Sentiment:". A given verbalizer must cover every label (checked where labels are
    known, see `words`).
    """

    template: str = "{text}\nSentiment:"
    verbalizer: Mapping[str, str] | None = None
    fields: tuple[str, ...] | None = None
    # The template cut at its slots: literal pieces[0], slot names[0], pieces[1], ...
    _pieces: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _slots: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.fields is None:
            count = self.template.count(TEXT_SLOT)
            if count != 1:
                raise BadRequest(
                    f"template must contain {TEXT_SLOT} exactly once, found {count} in {self.template!r}",
                    path="template",
                    # The template may come from a checkpoint's ctsft.json.
                    remote_message=f"template must contain {TEXT_SLOT} exactly once, found {count}",
                )
            before, after = self.template.split(TEXT_SLOT, 1)
            object.__setattr__(self, "_pieces", (before, after))
            object.__setattr__(self, "_slots", ("text",))
            return
        object.__setattr__(self, "fields", tuple(self.fields))
        self._check_fields()
        pieces, slots = [], []
        at = 0
        for m in SLOT.finditer(self.template):
            pieces.append(self.template[at : m.start()])
            slots.append(m.group(1))
            at = m.end()
        pieces.append(self.template[at:])
        object.__setattr__(self, "_pieces", tuple(pieces))
        object.__setattr__(self, "_slots", tuple(slots))

    def _check_fields(self) -> None:
        assert self.fields is not None
        names = ", ".join(self.fields)
        if not self.fields:
            raise BadRequest("fields is empty: map at least one field to a column", path="fields")
        bad = [f for f in self.fields if not FIELD_NAME.fullmatch(f)]
        if bad:
            raise BadRequest(
                f"field names must be identifiers (letters, digits, _), got {bad}",
                path="fields",
                remote_message=f"{len(bad)} field name(s) are not identifiers (letters, digits, _)",
            )
        if len(set(self.fields)) != len(self.fields):
            raise BadRequest(f"fields has duplicates: {list(self.fields)}", path="fields")
        found = slot_names(self.template)
        for f in self.fields:
            n = found.count(f)
            if n != 1:
                how = "has no" if n == 0 else f"has {n}"
                raise BadRequest(
                    f"template {how} {{{f}}} slot for field {f!r} (fields: {names}); each field's slot appears "
                    f"exactly once, in {self.template!r}",
                    path="template",
                    remote_message=f"template {how} {{{f}}} slot for field {f!r} (fields: {names})",
                )
        unfilled = [s for s in found if s not in self.fields]
        if unfilled:
            s = unfilled[0]
            raise BadRequest(
                f"template slot {{{s}}} is filled by no field (fields: {names}); map a column to {s!r} "
                f"or remove the slot from {self.template!r}",
                path="template",
                remote_message=f"template slot {{{s}}} is filled by no field (fields: {names})",
            )

    @property
    def slots(self) -> tuple[str, ...]:
        """Slot names in template order (("text",) for a single-text template)."""
        return self._slots

    @property
    def prefix(self) -> str:
        """Template text before the first slot."""
        return self._pieces[0]

    @property
    def suffix(self) -> str:
        """Template text after the last slot (where the answer is read)."""
        return self._pieces[-1]

    def blank(self) -> Example:
        """An example whose every slot is empty: the bare template, as `check_verbalizer` reads it."""
        return "" if self.fields is None else dict.fromkeys(self.fields, "")

    def render(self, example: Example) -> str:
        return self.render_spans(example)[0]

    def render_spans(self, example: Example) -> tuple[str, list[tuple[int, int]]]:
        """The prompt and, per slot in template order, the (start, end) of its value in it."""
        values = self._values(example)
        out = [self._pieces[0]]
        at = len(self._pieces[0])
        spans: list[tuple[int, int]] = []
        for value, piece in zip(values, self._pieces[1:], strict=True):
            spans.append((at, at + len(value)))
            out += (value, piece)
            at += len(value) + len(piece)
        return "".join(out), spans

    def _values(self, example: Example) -> list[str]:
        if self.fields is None:
            if not isinstance(example, str):
                raise BadRequest(
                    f"template {self.template!r} takes one text ({TEXT_SLOT}), got a record of fields "
                    f"{sorted(example)}; give a template with a slot per field",
                    path="template",
                    remote_message=f"the template takes one text ({TEXT_SLOT}), got a record of {len(example)} fields",
                )
            return [example]
        if isinstance(example, str):
            raise BadRequest(
                f"template has fields {list(self.fields)}, got a plain text; give a record with those fields",
                path="texts",
            )
        missing = [f for f in self.fields if f not in example]
        if missing:
            raise BadRequest(
                f"example lacks field {missing[0]!r} (the template has fields {list(self.fields)}, "
                f"the example {sorted(example)})",
                path="texts",
            )
        return [example[s] for s in self._slots]

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
    prompt = fmt.render(fmt.blank())
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
