"""Prompts, verbalizer checks and batch encoding against real (tiny, locally trained)
tokenizers, plus a tiny GPT-2 to show right padding + last_index reads the right logits."""

from __future__ import annotations

import pytest
import torch
from asserts import raises_bad
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from ctsft_runtime.data import (
    LabeledSet,
    PromptFormat,
    check_verbalizer,
    encode_batch,
    iterate_batches,
)

LABELS = ["negative", "neutral", "positive"]
CORPUS = [
    "the food is good",
    "the service is bad",
    "good good food and good coffee",
    "bad bad service and bad room",
    "the movie was okay\nSentiment: neutral",
    "Sentiment: positive",
    "Sentiment: negative",
] * 4


def _bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


@pytest.fixture(scope="module")
def plain() -> PreTrainedTokenizerFast:
    """GPT-2 style: no pad token, no special tokens added."""
    return PreTrainedTokenizerFast(tokenizer_object=_bpe(), eos_token="<eos>")


@pytest.fixture(scope="module")
def wrapped() -> PreTrainedTokenizerFast:
    """Adds <bos> ... <eos> around every text, with a pad token: the awkward case."""
    tok = _bpe()
    tok.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=True),
            processors.TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<eos>", 0), ("<bos>", 1)]),
        ]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", bos_token="<bos>", pad_token="<bos>")


def test_template_must_hold_text_slot_once() -> None:
    with raises_bad("template", "{text} exactly once"):
        PromptFormat(template="Review:\nSentiment:")
    with raises_bad("template", "found 2"):
        PromptFormat(template="{text} {text}")
    fmt = PromptFormat(template="Q: {text} {x}")  # other braces are plain text
    assert fmt.render("a {b}") == "Q: a {b} {x}"


def test_default_and_missing_verbalizer_words() -> None:
    assert PromptFormat().words(LABELS) == [" negative", " neutral", " positive"]
    fmt = PromptFormat(verbalizer={"negative": " bad", "postive": " good", "neutral": " ok"})
    with raises_bad("verbalizer", "no word for label(s) ['positive']"):
        fmt.words(LABELS)
    with raises_bad("verbalizer", "['postive'], which are not labels"):
        fmt.words(LABELS)
    with raises_bad("verbalizer", "is empty"):
        PromptFormat(verbalizer={"a": ""}).words(["a"])


def test_check_verbalizer_returns_in_context_first_tokens(plain: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(verbalizer={"negative": " bad", "neutral": " okay", "positive": " good"})
    ids = check_verbalizer(plain, fmt, LABELS)
    assert len(set(ids)) == 3
    assert plain.convert_ids_to_tokens(ids) == ["Ġbad", "Ġokay", "Ġgood"]
    assert len(set(check_verbalizer(plain, PromptFormat(), LABELS))) == 3


def test_check_verbalizer_names_colliding_labels(plain: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(verbalizer={"negative": " bad", "neutral": " goodish", "positive": " good"})
    with raises_bad("verbalizer", "labels ['neutral', 'positive'] all start with token 'Ġgood'"):
        check_verbalizer(plain, fmt, LABELS)
    with raises_bad("verbalizer", "no word for label(s) ['neutral']"):
        check_verbalizer(plain, PromptFormat(verbalizer={"negative": " a", "positive": " b"}), LABELS)


def test_encode_batch_right_pads_and_points_at_last_prompt_token(
    plain: PreTrainedTokenizerFast,
) -> None:
    fmt = PromptFormat()
    texts = ["good", "the service is bad and the room is bad", ""]
    enc = encode_batch(plain, texts, fmt, max_length=64)
    assert plain.pad_token_id is None  # fell back to eos for padding
    for b, text in enumerate(texts):
        alone = plain(fmt.render(text))["input_ids"]
        n = len(alone)
        assert enc["last_index"][b].item() == n - 1
        assert enc["input_ids"][b, :n].tolist() == alone
        assert enc["attention_mask"][b].tolist() == [1] * n + [0] * (enc["input_ids"].shape[1] - n)
        assert plain.convert_ids_to_tokens(enc["input_ids"][b, n - 1].item()) == ":"
    assert enc["input_ids"][0, -1].item() == plain.eos_token_id
    want = {**dict.fromkeys(("input_ids", "attention_mask", "last_index"), torch.long), "truncated": torch.bool}
    assert {k: v.dtype for k, v in enc.items()} == want
    assert enc["truncated"].tolist() == [False] * len(texts)


def test_encode_batch_keeps_bos_drops_trailing_eos(wrapped: PreTrainedTokenizerFast) -> None:
    enc = encode_batch(wrapped, ["good food"], PromptFormat(), max_length=64)
    ids = enc["input_ids"][0].tolist()
    assert ids[0] == wrapped.bos_token_id
    assert wrapped.convert_ids_to_tokens(ids[enc["last_index"][0].item()]) == ":"
    assert wrapped.eos_token_id not in ids


@pytest.mark.parametrize("which", ["plain", "wrapped"])
def test_truncation_cuts_the_start_of_the_text_only(which: str, request: pytest.FixtureRequest) -> None:
    tok: PreTrainedTokenizerFast = request.getfixturevalue(which)
    fmt = PromptFormat(template="Review: {text}\nSentiment:")
    long = " ".join(["bad service"] * 30) + " but good coffee"
    full = encode_batch(tok, [long], fmt, max_length=1000)["input_ids"][0].tolist()
    enc = encode_batch(tok, [long, "good"], fmt, max_length=16)
    cut = enc["input_ids"][0].tolist()
    assert len(cut) == 16 and enc["last_index"][0].item() == 15
    assert enc["truncated"].tolist() == [True, False]
    n_head = len(tok("Review:", add_special_tokens=False)["input_ids"]) + (which == "wrapped")
    n_tail = len(tok(" good coffee\nSentiment:", add_special_tokens=False)["input_ids"])
    assert len(full) > 16 > n_head + n_tail
    assert cut[:n_head] == full[:n_head]  # [<bos>] Review:
    assert cut[-n_tail:] == full[-n_tail:]  # "...good coffee\nSentiment:" survives
    assert cut[n_head:] == full[len(full) - (16 - n_head) :]  # one cut, at the text's start
    assert "coffee" in tok.decode(cut)


def test_encode_batch_errors(plain: PreTrainedTokenizerFast) -> None:
    fmt = PromptFormat(template="Please classify the review: {text}\nSentiment:")
    with raises_bad("max_length", "too small"):
        encode_batch(plain, ["good"], fmt, max_length=3)
    with raises_bad("texts", "empty"):
        encode_batch(plain, [], fmt, max_length=8)
    with raises_bad("texts", "empty prompt"):
        encode_batch(plain, [""], PromptFormat(template="{text}"), max_length=8)


def test_right_padding_gives_unpadded_logits_on_gpt2(plain: PreTrainedTokenizerFast) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(plain), n_positions=64, n_embd=32, n_layer=2, n_head=2)
    model = GPT2LMHeadModel(cfg).eval()
    texts = ["good", "the service is bad and the room is bad"]
    enc = encode_batch(plain, texts, PromptFormat(), max_length=64)
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        at_last = logits[torch.arange(len(texts)), enc["last_index"]]
        for b in range(len(texts)):
            n = enc["last_index"][b].item() + 1
            alone = model(input_ids=enc["input_ids"][b : b + 1, :n]).logits[0, -1]
            torch.testing.assert_close(at_last[b], alone, atol=1e-5, rtol=1e-5)


def test_iterate_batches_is_deterministic_and_complete() -> None:
    ds = LabeledSet([f"t{i}" for i in range(10)], [i % 2 for i in range(10)], ["a", "b"], "m")
    ordered = list(iterate_batches(ds, 4))
    assert [b.indices for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = [b.indices for b in iterate_batches(ds, 4, seed=1)]
    assert shuffled == [b.indices for b in iterate_batches(ds, 4, seed=1)]
    assert shuffled != [b.indices for b in iterate_batches(ds, 4, seed=2)]
    assert sorted(i for b in shuffled for i in b) == list(range(10))
    batch = next(iterate_batches(ds, 4, seed=1))
    assert batch.texts == [ds.texts[i] for i in batch.indices]
    assert batch.labels == [ds.labels[i] for i in batch.indices]
    assert [len(b.indices) for b in iterate_batches(ds, 4, drop_last=True)] == [4, 4]
    with raises_bad("batch_size", "at least 1"):
        next(iterate_batches(ds, 0))
