"""Pair-input tasks in the data layer: templates with named fields, the field -> column
mapping of CSV/TSV/JSONL files, label maps, and truncation that keeps every field's tail
and the whole template. The IndoNLI/AmericasNLI checks read the real files through
CTSFT_INDONLI_DIR / CTSFT_AMERICASNLI_DIR (set by .ci/run) and skip without them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from asserts import raises_bad
from transformers import PreTrainedTokenizerFast

from ctsft_runtime.data import (
    LabeledSet,
    PromptFormat,
    balanced_subsample,
    check_verbalizer,
    encode_batch,
    load_labeled,
)
from ctsft_runtime.models import TaskConfig
from ctsft_runtime.models.new_model import train_tokenizer

NLI = "{premise}\nQuestion: {hypothesis}\nAnswer:"
PAIR = ("premise", "hypothesis")
INDONLI = os.environ.get("CTSFT_INDONLI_DIR")
AMERICASNLI = os.environ.get("CTSFT_AMERICASNLI_DIR")


def write(tmp_path: Path, name: str, content: str) -> Path:
    file = tmp_path / name
    file.write_text(content, encoding="utf-8", newline="")
    return file


# --- templates ---------------------------------------------------------------------------


def test_named_slots_render_in_one_pass_with_spans() -> None:
    fmt = PromptFormat(NLI, fields=PAIR)
    assert fmt.slots == PAIR
    # A value that looks like a slot is text: substitution never looks inside values.
    prompt, spans = fmt.render_spans({"premise": "a {hypothesis} b", "hypothesis": "{premise}"})
    assert prompt == "a {hypothesis} b\nQuestion: {premise}\nAnswer:"
    assert [prompt[s:e] for s, e in spans] == ["a {hypothesis} b", "{premise}"]
    assert fmt.prefix == "" and fmt.suffix == "\nAnswer:"
    assert fmt.render(fmt.blank()) == "\nQuestion: \nAnswer:"
    # Slot order is the template's, whatever the order of the fields.
    swapped = PromptFormat("H: {hypothesis} P: {premise} ->", fields=PAIR)
    assert swapped.slots == ("hypothesis", "premise")
    assert swapped.render({"premise": "p", "hypothesis": "h"}) == "H: h P: p ->"


def test_single_text_templates_are_unchanged() -> None:
    fmt = PromptFormat("Q: {text} {x}")  # no fields: only {text} is a slot, as before
    assert fmt.render("a {b}") == "Q: a {b} {x}"
    assert fmt.slots == ("text",)
    with raises_bad("template", "{text} exactly once"):
        PromptFormat(NLI)


def test_template_missing_a_mapped_field_names_it() -> None:
    with raises_bad("template", "template has no {hypothesis} slot for field 'hypothesis'"):
        PromptFormat("{premise}\nAnswer:", fields=PAIR)
    with raises_bad("template", "has 2 {premise} slot"):
        PromptFormat("{premise} {premise} {hypothesis}", fields=PAIR)


def test_template_slot_that_no_field_fills_names_it() -> None:
    with raises_bad("template", "slot {question} is filled by no field (fields: premise, hypothesis)"):
        PromptFormat("{premise} {question} {hypothesis}", fields=PAIR)


def test_field_names_and_example_kinds_are_checked() -> None:
    with raises_bad("fields", "identifiers"):
        PromptFormat("{premise}", fields=("premise", "1st"))
    with raises_bad("texts", "got a plain text"):
        PromptFormat(NLI, fields=PAIR).render("just a text")
    with raises_bad("texts", "lacks field 'hypothesis'"):
        PromptFormat(NLI, fields=PAIR).render({"premise": "p"})
    with raises_bad("template", "got a record of fields"):
        PromptFormat().render({"premise": "p"})


def test_task_config_records_fields_and_rereads_them(tmp_path: Path) -> None:
    task = TaskConfig(
        NLI, None, ["contradiction", "entailment", "neutral"], {"premise": "sentence1", "hypothesis": "s2"}
    )
    (tmp_path / "ctsft.json").write_text(task.to_json())
    again = TaskConfig.read(tmp_path)
    assert again == task
    # Key order is not kept (sorted JSON): slots follow the template, so it does not matter.
    assert again is not None and again.prompt.slots == PAIR
    # A file from before pair-input tasks (no `fields` key) is a single-text task.
    (tmp_path / "ctsft.json").write_text(json.dumps({"template": "{text} ->", "label_names": ["a", "b"]}))
    old = TaskConfig.read(tmp_path)
    assert old is not None and old.fields is None
    (tmp_path / "ctsft.json").write_text(json.dumps({"template": NLI, "label_names": ["a"], "fields": ["premise"]}))
    with raises_bad("source", "`fields` is a list"):
        TaskConfig.read(tmp_path)
    (tmp_path / "ctsft.json").write_text(
        json.dumps({"template": NLI, "label_names": ["a"], "fields": {"premise": "p"}})
    )
    with raises_bad("source", "slot {hypothesis} is filled by no field"):
        TaskConfig.read(tmp_path)


# --- field -> column mapping ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.jsonl", '{"s1": "a, b", "s2": "c", "y": "e"}\n{"s1": "d", "s2": "e\\tf", "y": "c"}\n'),
        ("d.tsv", 's1\ts2\ty\na, b\tc\te\nd\t"e\tf"\tc\n'),
        ("d.csv", 's1,s2,y\n"a, b",c,e\nd,"e\tf",c\n'),
    ],
)
def test_fields_read_records_from_every_format(tmp_path: Path, name: str, content: str) -> None:
    ds = load_labeled(write(tmp_path, name, content), fields={"premise": "s1", "hypothesis": "s2"}, label_column="y")
    assert ds.texts == [{"premise": "a, b", "hypothesis": "c"}, {"premise": "d", "hypothesis": "e\tf"}]
    assert ds.fields == {"premise": "s1", "hypothesis": "s2"}
    assert ds.label_names == ["c", "e"] and ds.labels == [1, 0]
    # Subsets keep the fields (and their columns).
    assert ds.select([1]).fields == ds.fields
    assert balanced_subsample(ds, 1, seed=0).texts == ds.texts


def test_field_missing_in_the_data_names_field_column_and_file(tmp_path: Path) -> None:
    file = write(tmp_path, "d.jsonl", '{"premise": "p", "hyp": "h", "label": "e"}\n')
    with raises_bad("fields", f"field 'hypothesis' maps to column 'hypothesis', which {file} lacks"):
        load_labeled(file, fields={"premise": "premise", "hypothesis": "hypothesis"})
    with raises_bad("text_column", "not both"):
        load_labeled(file, fields={"premise": "premise"}, text_column="premise")
    with raises_bad("fields", "identifiers"):
        load_labeled(file, fields={"pre-mise": "premise"})
    later = write(tmp_path, "e.jsonl", '{"premise": "p", "hyp": "h", "label": "e"}\n{"premise": "q", "label": "n"}\n')
    with raises_bad("fields", "line 2 of"):
        load_labeled(later, fields={"premise": "premise", "hypothesis": "hyp"})


def test_labeled_set_refuses_examples_of_the_wrong_kind() -> None:
    with raises_bad("texts", "is not a record of fields ['premise', 'hypothesis']"):
        LabeledSet([{"premise": "p"}], [0], ["a"], "mem", {"premise": "premise", "hypothesis": "hypothesis"})
    with raises_bad("texts", "is not a text"):
        LabeledSet([{"premise": "p"}], [0], ["a"], "mem")


# --- label maps ----------------------------------------------------------------------------


def test_label_map_renames_and_refuses_unmapped_labels(tmp_path: Path) -> None:
    names = {"e": "entailment", "n": "neutral", "c": "contradiction"}
    file = write(tmp_path, "d.csv", "text,label\nx,e\ny, c \nz,n\n")
    ds = load_labeled(file, label_map=names)
    assert ds.label_names == ["contradiction", "entailment", "neutral"]  # mapped names, sorted
    assert [ds.label_names[y] for y in ds.labels] == ["entailment", "contradiction", "neutral"]
    # Two spellings may map to one label; `labels` orders the mapped names.
    ds = load_labeled(file, label_map={**names, "c": "neutral"}, labels=["neutral", "entailment"])
    assert ds.labels == [1, 0, 0]
    # A label that already is a label name stays itself: one map serves both spellings.
    mixed = load_labeled(
        write(tmp_path, "mixed.csv", "text,label\nx,e\ny,entailment\nz,contradiction\n"), label_map=names
    )
    assert mixed.label_names == ["contradiction", "entailment"] and mixed.labels == [1, 1, 0]
    bad = write(tmp_path, "bad.csv", "text,label\nx,e\ny,entail\n")
    with raises_bad("label_map", f"label 'entail' in row 2 of {bad} (column 'label') is not in label_map"):
        load_labeled(bad, label_map=names)


@pytest.mark.skipif(not (INDONLI and AMERICASNLI), reason="CTSFT_INDONLI_DIR / CTSFT_AMERICASNLI_DIR not set")
def test_indonli_and_americasnli_align_through_a_label_map() -> None:
    assert INDONLI and AMERICASNLI
    proxy = load_labeled(
        Path(INDONLI) / "valid.jsonl",
        fields={"premise": "premise", "hypothesis": "hypothesis"},
        label_map={"e": "entailment", "n": "neutral", "c": "contradiction"},
    )
    target = load_labeled(
        Path(AMERICASNLI) / "aym" / "dev.tsv", fields={"premise": "premise", "hypothesis": "hypothesis"}
    )
    assert proxy.label_names == target.label_names == ["contradiction", "entailment", "neutral"]
    assert len(proxy) == 2197 and proxy.class_counts() == {"contradiction": 749, "entailment": 807, "neutral": 641}
    assert len(target) == 743 and set(target.texts[0]) == set(PAIR)


# --- truncation ----------------------------------------------------------------------------

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "a", "dog", "ran", "far", "away", "from", "home", "today"]


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "bos"])
def tok(request: pytest.FixtureRequest) -> PreTrainedTokenizerFast:
    corpus = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4 + ["Question: Answer:"] * 4
    return train_tokenizer(corpus, vocab_size=300, add_bos=request.param)


def _words(n: int, tag: str) -> str:
    return " ".join(f"{WORDS[i % len(WORDS)]}" for i in range(n)) + f" {tag}"


def _field_positions(tok: PreTrainedTokenizerFast, fmt: PromptFormat, example: dict[str, str]) -> dict[str, list[int]]:
    """Each field's token positions inside the full (uncut) prompt, located by offsets."""
    prompt, spans = fmt.render_spans(example)
    offsets = tok(prompt, return_offsets_mapping=True)["offset_mapping"]
    return {
        name: [i for i, (s, e) in enumerate(offsets) if s < end and start < e <= end]
        for name, (start, end) in zip(fmt.slots, spans, strict=True)
    }


def test_truncation_keeps_template_and_each_fields_tail(tok: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(NLI, fields=PAIR)
    long = {"premise": _words(60, "cat"), "hypothesis": _words(3, "dog")}
    full = encode_batch(tok, [long], fmt, max_length=1000)["input_ids"][0].tolist()
    at = _field_positions(tok, fmt, long)
    premise, hypothesis = at["premise"], at["hypothesis"]
    fixed = len(full) - len(premise) - len(hypothesis)  # template + BOS
    budget = fixed + len(hypothesis) + 10
    enc = encode_batch(tok, [long, {"premise": "cat", "hypothesis": "dog"}], fmt, max_length=budget)
    cut = enc["input_ids"][0].tolist()
    assert len(cut) == budget and enc["last_index"][0].item() == budget - 1
    assert enc["truncated"].tolist() == [True, False]
    # Exactly the premise's first tokens went: [BOS], the premise's last 10 tokens, then the
    # template and the whole short hypothesis.
    dropped = set(premise[:-10])
    assert cut == [t for i, t in enumerate(full) if i not in dropped]
    assert premise[0] == (1 if tok.bos_token_id in full[:1] else 0)
    assert tok.decode(cut).endswith(" dog\nAnswer:") and " cat\nQuestion:" in tok.decode(cut)


def test_truncation_shares_the_budget_longest_first(tok: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat("H: {hypothesis} | P: {premise} ->", fields=PAIR)
    ex = {"premise": _words(40, "cat"), "hypothesis": _words(25, "dog")}
    at = _field_positions(tok, fmt, ex)
    n_p, n_h = len(at["premise"]), len(at["hypothesis"])
    assert n_p >= n_h + 3
    full = encode_batch(tok, [ex], fmt, max_length=1000)["input_ids"][0].tolist()
    fixed = len(full) - n_p - n_h
    for keep in (2 * n_h + 3, 2 * n_h - 4, 7):  # only the premise cut; both cut; both cut hard
        cut = encode_batch(tok, [ex], fmt, max_length=fixed + keep)["input_ids"][0].tolist()
        # Longest first: the premise shrinks to the hypothesis's length before the hypothesis
        # loses anything; from then on they alternate, the earlier field (here the
        # hypothesis) going first at equal lengths.
        want_h = n_h if keep >= 2 * n_h else keep // 2
        want_p = keep - want_h
        dropped = set(at["premise"][: n_p - want_p]) | set(at["hypothesis"][: n_h - want_h])
        assert cut == [t for i, t in enumerate(full) if i not in dropped], keep
        text = tok.decode(cut, skip_special_tokens=True)
        assert text.startswith("H: ") and text.endswith(" cat ->") and " dog | P: " in text


def test_truncation_errors_when_the_template_alone_is_too_long(tok: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(NLI, fields=PAIR)
    with raises_bad("max_length", "too small"):
        encode_batch(tok, [{"premise": "cat", "hypothesis": "dog"}], fmt, max_length=3)


def test_verbalizer_is_checked_after_the_bare_template(tok: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(NLI, {"yes": " cat", "no": " dog"}, fields=PAIR)
    ids = check_verbalizer(tok, fmt, ["yes", "no"])
    assert len(set(ids)) == 2
