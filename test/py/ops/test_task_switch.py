"""One model, two tasks: a template other than the model's recorded one is another task, read
with its own labels and label words (sentiment after a pair-input task, as `adapt`'s related
tasks train θ1: a {text} template reads single texts, whatever the recorded task reads).
Without a template, or with the recorded one, data must still match the recorded task, so a
target set with other labels is refused, naming them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from op_calls import call

from ctsft_runtime.data import write_task_csv
from ctsft_runtime.errors import BadRequest
from ctsft_runtime.ops.state import RuntimeState

SENTIMENT = "{text}\nSentiment:"
PAIR = "{a}\nAnd: {b}\nSame:"


@pytest.fixture()
def two_tasks(tiny_checkpoint, synthetic_task, tmp_path):
    """A loaded tiny model, the synthetic sentiment files, and a pair-input file with other
    labels: are two consecutive training texts of the same sentiment?"""
    write_task_csv({"src": synthetic_task["src"]}, tmp_path / "data")
    src = synthetic_task["src"]["train"]
    pair = tmp_path / "pair.jsonl"
    rows = [
        {"a": a, "b": b, "label": "same" if la == lb else "different"}
        for a, b, la, lb in zip(src.texts, src.texts[1:], src.labels, src.labels[1:], strict=False)
    ]
    pair.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    state = RuntimeState()
    handle = call(state, "model.load", {"source": str(tiny_checkpoint)}).body["handle"]
    sentiment = {split: {"path": str(tmp_path / f"data/src/{split}.csv")} for split in ("train", "test")}
    return state, handle, sentiment, {"path": str(pair), "fields": {"a": "a", "b": "b"}}


def _task(state: RuntimeState, handle: str) -> dict:
    return call(state, "model.info", {"handle": handle}).body["task"]


def test_a_new_template_trains_and_evaluates_a_task_with_other_labels_and_fields(two_tasks) -> None:
    state, handle, sentiment, pair = two_tasks
    call(state, "train", {"model": handle, "data": pair, "template": PAIR, "epochs": 1, "batchSize": 16})
    task = _task(state, handle)
    assert (task["template"], task["labels"], task["fields"]) == (PAIR, ["different", "same"], {"a": "a", "b": "b"})

    # Sentiment next, with its own template: the recorded pair task's labels and fields do not apply.
    call(state, "train", {"model": handle, "data": sentiment["train"], "template": SENTIMENT, "epochs": 1})
    task = _task(state, handle)
    sentiment_labels = ["negative", "neutral", "positive"]
    assert (task["template"], task["labels"], task.get("fields")) == (SENTIMENT, sentiment_labels, None)

    # Both tasks evaluate on the one model, each asked with its template.
    for data, template, n_labels in ((pair, PAIR, 2), (sentiment["test"], SENTIMENT, 3)):
        report = call(state, "evaluate", {"model": handle, "data": [data], "template": template}).body["results"][0]
        assert math.isfinite(report["accuracy"]) and len(report["labels"]) == n_labels, report


def test_the_recorded_task_still_guards_its_labels(two_tasks) -> None:
    state, handle, sentiment, pair = two_tasks
    call(state, "train", {"model": handle, "data": sentiment["train"], "template": SENTIMENT, "epochs": 1})
    # The pair file asked as the recorded task (no template, or the recorded one): other labels, refused.
    relabelled = {"path": pair["path"], "textColumn": "a"}
    for extra in ({}, {"template": SENTIMENT}):
        for op, body in (("train", {"data": relabelled}), ("evaluate", {"data": [relabelled]})):
            refused = r"unknown label '(same|different)' .*allowed labels: \['negative', 'neutral', 'positive'\]"
            with pytest.raises(BadRequest, match=refused):
                call(state, op, {"model": handle, **body, **extra})


def test_scoring_asks_the_task_of_its_template(two_tasks, tmp_path: Path) -> None:
    state, handle, sentiment, pair = two_tasks
    call(state, "train", {"model": handle, "data": pair, "template": PAIR, "epochs": 1, "batchSize": 16})
    call(state, "train", {"model": handle, "data": sentiment["train"], "template": SENTIMENT, "epochs": 1})
    body = {"model": handle, "data": {**pair, "perClass": 4}, "template": PAIR, "method": "attribution"}
    scores = call(state, "score", {**body, "out": str(tmp_path / "scores.json")}).body
    assert scores["labels"] == ["different", "same"], scores["labels"]
