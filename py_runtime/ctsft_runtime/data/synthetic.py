"""A seeded synthetic multilingual sentiment task, so the whole pipeline runs with no data.

Shape of the task (mirrors NusaX-Senti: 3 labels, parallel languages):

- **Meanings.** Each example is an abstract sentence: a subject ("the food"), and either
  a sentiment predicate ("is very good", label from the adjective's polarity) or a neutral
  fact ("opened at noon", label neutral), plus optional filler words ("honestly") that
  occur in every class. Five sentiment templates and three neutral ones vary the
  structure. **Negation** (probability `negation`, sentiment templates with a single
  adjective only) inserts "not" after the copula and flips positive <-> negative, so a
  bag of words cannot solve those rows. Labels are balanced to within one per split, and
  a meaning is not repeated across or within splits while unseen ones are easy to find.
- **Source language.** English-like words ("the food is not good"). Distance 0 renders
  exactly this text.
- **Derived languages.** A language at `distance` d in [0, 1] renders the same meanings
  (row i of every language is the same sentence, same label) through three knobs, each
  scaling with d and seeded by (seed, language name):
    1. *vocabulary*: round(d * V) of the V source word types get a new, pronounceable
       word built from the language's own syllable inventory;
    2. *affixes*: each word type carries its part-of-speech affix (noun prefix, adjective
       suffix, verb suffix, drawn per language) with probability d;
    3. *word order*: round(d * 5) of five grammar rules are switched on (seeded choice):
       determiner after noun, no copula, negation after the adjective, predicate before
       subject, phrases in reverse order.
  So at d = 1 no source word survives unchanged and every rule applies.

Everything is deterministic in `seed`; `write_task_csv` stores a task in the NusaX layout
(`<dir>/<lang>/<split>.csv`, columns id,text,label).
"""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadRequest
from .loading import LabeledSet

LABELS = ["negative", "neutral", "positive"]
NEG, NEU, POS = 0, 1, 2
SPLITS = ("train", "valid", "test")
DEFAULT_LANGUAGES: dict[str, float] = {"src": 0.0, "easy": 0.2, "hard": 0.7}
ORDER_RULES = ("det_after", "no_copula", "neg_after", "pred_first", "reverse")

# Source lexicon by part of speech. A word is both the concept id and its source surface.
DETS = ("the", "this", "that")
COPULAS = ("is", "was")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NOUNS = _words("""
    food service hotel movie staff phone room price driver app book song shop train teacher coffee
""")
POSITIVE = _words("""
    good great excellent tasty friendly clean fast lovely amazing perfect helpful fresh
    comfortable pleasant wonderful cheap
""")
NEGATIVE = _words("""
    bad awful terrible dirty slow rude broken boring noisy poor horrible stale ugly expensive
    disappointing crowded
""")
NEUTRAL_VERBS = ("opened", "arrived", "closed", "started", "changed", "moved", "returned", "stayed")
PREPS = ("at", "near", "after", "before")
PLACES = ("noon", "station", "market", "school", "lunch", "midnight", "weekend", "airport")
FILLERS = ("honestly", "actually", "well", "frankly", "again", "also", "yesterday", "today")
INTENSIFIERS = ("very", "really", "so", "quite", "truly")
OPINION = (("i", "think"), ("we", "feel"), ("i", "believe"))
FUNCTION = ("not", "and", "what", "a")

POS_OF: dict[str, str] = {
    **dict.fromkeys(DETS, "det"),
    **dict.fromkeys(COPULAS, "cop"),
    **dict.fromkeys(NOUNS + PLACES, "noun"),
    **dict.fromkeys(POSITIVE + NEGATIVE, "adj"),
    **dict.fromkeys((*NEUTRAL_VERBS, "think", "feel", "believe"), "verb"),
    **dict.fromkeys(PREPS + FILLERS + INTENSIFIERS + FUNCTION + ("i", "we"), "fn"),
}
SOURCE_WORDS = tuple(POS_OF)

Phrase = tuple[str, list[str]]  # (role, source words)


@dataclass
class SyntheticLanguage:
    """How one language renders meanings; `lexicon` maps every source word to its form."""

    name: str
    distance: float
    lexicon: dict[str, str]
    rules: tuple[str, ...]
    affixes: dict[str, str]  # part of speech -> affix ("-x" suffix, "x-" prefix)

    def render(self, phrases: list[Phrase]) -> str:
        phrases = [(role, list(words)) for role, words in phrases]
        for role, words in phrases:
            if role == "subj" and "det_after" in self.rules and len(words) == 2:
                words.reverse()
            if role == "pred" and "neg_after" in self.rules and "not" in words:
                words.remove("not")
                words.append("not")
        if "no_copula" in self.rules:
            phrases = [(r, [w for w in ws if POS_OF[w] != "cop"]) for r, ws in phrases]
        roles = [r for r, _ in phrases]
        if "pred_first" in self.rules and "subj" in roles:
            i = roles.index("subj")
            if i + 1 < len(phrases):
                phrases[i], phrases[i + 1] = phrases[i + 1], phrases[i]
        if "reverse" in self.rules:
            phrases.reverse()
        return " ".join(self.lexicon[w] for _, ws in phrases for w in ws)


@dataclass(frozen=True)
class _Meaning:
    label: int
    phrases: tuple[tuple[str, tuple[str, ...]], ...]


def make_language(seed: int, name: str, distance: float) -> SyntheticLanguage:
    """The language `name` at `distance` from the source (see the module doc)."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        # The name becomes a folder in write_task_csv, so keep it a plain identifier.
        raise BadRequest(
            f"language name {name!r} must be non-empty letters, digits, '_' or '-'",
            path="languages",
        )
    if isinstance(distance, bool) or not isinstance(distance, (int, float)) or not (0.0 <= distance <= 1.0):
        raise BadRequest(
            f"distance of language {name!r} must be a number in [0, 1], got {distance!r}",
            path=f"languages.{name}",
        )
    rng = random.Random(f"ctsft-synthetic:{seed}:lang:{name}")
    consonants = rng.sample("ptkbdgmnslrwjh", 8)
    vowels = rng.sample("aeiou", 3)

    def syllable() -> str:
        return rng.choice(consonants) + rng.choice(vowels)

    def new_word(src: str) -> str:
        # Roughly as long as the source word so token counts stay comparable.
        n = max(1, min(4, round(len(src) / 2.5)))
        return "".join(syllable() for _ in range(n)) + (rng.choice("nrs") if rng.random() < 0.3 else "")

    affixes = {"noun": syllable() + "-", "adj": "-" + syllable(), "verb": "-" + syllable() + "n"}
    replaced = set(rng.sample(SOURCE_WORDS, round(distance * len(SOURCE_WORDS))))
    taken = set(SOURCE_WORDS)  # a new form never looks like a source word, or like another
    lexicon: dict[str, str] = {}
    for w in SOURCE_WORDS:
        form = w
        if w in replaced:
            while form in taken:
                form = new_word(w)
        affix = affixes.get(POS_OF[w])
        if affix and rng.random() < distance:
            affixed = affix[:-1] + form if affix.endswith("-") else form + affix[1:]
            if affixed not in taken:
                form = affixed
        taken.add(form)
        lexicon[w] = form
    rules = tuple(sorted(rng.sample(ORDER_RULES, round(distance * len(ORDER_RULES))), key=ORDER_RULES.index))
    return SyntheticLanguage(name, float(distance), lexicon, rules, affixes)


def make_task(
    seed: int = 0,
    languages: Mapping[str, float] | None = None,
    n_train: int = 300,
    n_valid: int = 100,
    n_test: int = 300,
    *,
    negation: float = 0.2,
) -> dict[str, dict[str, LabeledSet]]:
    """`{lang: {"train"|"valid"|"test": LabeledSet}}`, parallel across languages."""
    langs = dict(DEFAULT_LANGUAGES if languages is None else languages)
    if not langs:
        raise BadRequest("languages is empty; give at least one {name: distance}", path="languages")
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise BadRequest(f"n_{split} must be a non-negative int, got {n!r}", path=f"n_{split}")
    if not 0.0 <= negation <= 1.0:
        raise BadRequest(f"negation must be a probability in [0, 1], got {negation}", path="negation")

    rendered = {name: make_language(seed, name, d) for name, d in langs.items()}
    rng = random.Random(f"ctsft-synthetic:{seed}:meanings")
    seen: set[_Meaning] = set()
    task: dict[str, dict[str, LabeledSet]] = {name: {} for name in langs}
    for split, n in sizes.items():
        labels = [i % len(LABELS) for i in range(n)]
        rng.shuffle(labels)
        meanings = [_fresh_meaning(rng, y, negation, seen) for y in labels]
        for name, lang in rendered.items():
            task[name][split] = LabeledSet(
                texts=[lang.render([(r, list(ws)) for r, ws in m.phrases]) for m in meanings],
                labels=[m.label for m in meanings],
                label_names=list(LABELS),
                source=f"synthetic(seed={seed})/{name}/{split}",
            )
    return task


def _fresh_meaning(rng: random.Random, label: int, negation: float, seen: set[_Meaning]) -> _Meaning:
    # Rejection keeps splits disjoint; after a few misses the space is nearly exhausted for
    # this label, and a repeat is better than failing.
    for _ in range(50):
        m = _meaning(rng, label, negation)
        if m not in seen:
            break
    seen.add(m)
    return m


def _meaning(rng: random.Random, label: int, negation: float) -> _Meaning:
    subj: Phrase = ("subj", [rng.choice(DETS), rng.choice(NOUNS)])
    filler: list[Phrase] = [("fill", [rng.choice(FILLERS)])] if rng.random() < 0.4 else []
    opinion: Phrase = ("opinion", list(rng.choice(OPINION)))
    intens = [rng.choice(INTENSIFIERS)] if rng.random() < 0.4 else []
    if label == NEU:
        verb = rng.choice([*NEUTRAL_VERBS, *COPULAS])
        compl: Phrase = ("compl", [rng.choice(PREPS), rng.choice(PLACES)])
        shapes = [
            [subj, ("pred", [verb]), compl, *filler],
            [*filler, opinion, subj, ("pred", [verb]), compl],
            [subj, ("pred", [verb]), compl, ("fill", [rng.choice(FILLERS)])],
        ]
        return _freeze(label, rng.choice(shapes))

    template = rng.randrange(5)
    negated = template < 3 and rng.random() < negation
    # The surface polarity is the opposite of the label when negated.
    polar = (label == POS) != negated
    adj = rng.choice(POSITIVE if polar else NEGATIVE)
    pred: Phrase = ("pred", [rng.choice(COPULAS), *(["not"] if negated else []), *intens, adj])
    if template == 0:
        shape = [subj, pred, *filler]
    elif template == 1:
        shape = [*filler, subj, pred]
    elif template == 2:
        shape = [opinion, subj, pred]
    elif template == 3:
        other = rng.choice([a for a in (POSITIVE if polar else NEGATIVE) if a != adj])
        shape = [subj, pred, ("conj", ["and", other])]
    else:
        shape = [("excl", ["what", "a"]), ("adj", [*intens, adj]), ("noun", [rng.choice(NOUNS)])]
    return _freeze(label, shape)


def _freeze(label: int, phrases: list[Phrase]) -> _Meaning:
    return _Meaning(label, tuple((r, tuple(ws)) for r, ws in phrases))


def write_task_csv(task: Mapping[str, Mapping[str, LabeledSet]], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write `<out_dir>/<lang>/<split>.csv` (id,text,label) atomically; returns the paths.

    Each file is written to a temporary file in its own folder, then moved into place with
    `os.replace`, so a reader never sees a half-written file. Row ids are the row numbers,
    equal across languages since the task is parallel.
    """
    written: list[Path] = []
    for lang, splits in task.items():
        folder = Path(out_dir) / lang
        folder.mkdir(parents=True, exist_ok=True)
        for split, ds in splits.items():
            target = folder / f"{split}.csv"
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{split}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(["id", "text", "label"])
                    for i, (text, y) in enumerate(zip(ds.texts, ds.labels, strict=True)):
                        w.writerow([i, text, ds.label_names[y]])
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
            written.append(target)
    return written


def token_overlap(text: list[str], reference: list[str]) -> float:
    """Share of whitespace tokens in `text` that also occur anywhere in `reference`.

    A crude, tokenizer-free measure of how much of a language a reader of the reference
    language would recognise; used to check that distance does what it says.
    """
    vocab = {w for t in reference for w in t.split()}
    tokens = [w for t in text for w in t.split()]
    return math.fsum(w in vocab for w in tokens) / max(1, len(tokens))
