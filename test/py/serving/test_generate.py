"""`generate`: transformers' own generation, streamed; equal to plain `model.generate`."""

from __future__ import annotations

import pytest
import torch
import transformers
from op_calls import OpCtx, call

from ctsft_runtime.errors import BadRequest, Cancelled
from ctsft_runtime.ops.state import RuntimeState
from ctsft_runtime.serving import generate_texts
from ctsft_runtime.serving.generation import TokenStreamer, encode_prompts

PROMPTS = ["the weather", "a long and quiet evening in the old town", "good"]


@pytest.fixture(scope="module")
def env(trained):
    state = RuntimeState(device="cpu")
    handle = call(state, "model.load", {"source": str(trained["llama"].base), "device": "cpu"}).body["handle"]
    return state, handle, state.models[handle]


def _plain(lm, prompts, **kw) -> torch.Tensor:
    """Plain transformers: the same left-padded batch straight into `model.generate`."""
    enc = encode_prompts(lm.tokenizer, prompts)
    out = lm.model.generate(**enc, pad_token_id=lm.tokenizer.pad_token_id, **kw)
    return out[:, enc["input_ids"].shape[1] :]


def _until_end(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos) + 1] if eos in ids else ids


def _gen(state, handle, **body):
    ctx = OpCtx(state)
    result = call(state, "generate", {"model": handle, **body}, ctx).body
    return result, ctx.events


def test_greedy_equals_plain_generate(env) -> None:
    state, handle, lm = env
    got = generate_texts(lm.model, lm.tokenizer, PROMPTS, max_new_tokens=16)
    want = _plain(lm, PROMPTS, max_new_tokens=16, do_sample=False)
    eos = lm.tokenizer.eos_token_id
    for g, w in zip(got, want.tolist(), strict=True):
        assert g.ids == _until_end(w, eos)
        assert g.text == lm.tokenizer.decode([t for t in g.ids if t != eos], skip_special_tokens=True)
    result, events = _gen(state, handle, prompts=PROMPTS, maxNewTokens=16)
    for i, out in enumerate(result["outputs"]):
        assert out["text"] == got[i].text and out["tokens"] == got[i].tokens
        assert out["finishReason"] == got[i].finish_reason
        # The streamed pieces of a prompt concatenate to its text.
        assert "".join(e["text"] for e in events if e["index"] == i) == out["text"]
        assert all(e["type"] == "token" for e in events)
    assert {o["finishReason"] for o in result["outputs"]} <= {"length", "eos"}


def test_seeded_sampling_reproduces_and_equals_transformers(env) -> None:
    state, handle, lm = env
    body = {"prompts": PROMPTS[:2], "maxNewTokens": 12, "temperature": 1.3, "topP": 0.9, "seed": 7}
    first, _ = _gen(state, handle, **body)
    second, _ = _gen(state, handle, **body)
    assert first == {**second, "seconds": first["seconds"]}
    other, _ = _gen(state, handle, **{**body, "seed": 8})
    assert [o["text"] for o in other["outputs"]] != [o["text"] for o in first["outputs"]]
    transformers.set_seed(7)
    want = _plain(lm, PROMPTS[:2], max_new_tokens=12, do_sample=True, temperature=1.3, top_p=0.9, top_k=0)
    got = generate_texts(lm.model, lm.tokenizer, PROMPTS[:2], max_new_tokens=12, temperature=1.3, top_p=0.9, seed=7)
    eos = lm.tokenizer.eos_token_id
    assert [g.ids for g in got] == [_until_end(w, eos) for w in want.tolist()]
    assert [g.text for g in got] == [o["text"] for o in first["outputs"]]


def test_stop_string_cuts_before_it_and_never_streams_it(env) -> None:
    state, handle, _ = env
    free, _ = _gen(state, handle, prompts=PROMPTS[:1], maxNewTokens=24)
    text = free["outputs"][0]["text"]
    assert len(text) >= 8, text
    stop = next(
        text[k : k + 2]
        for k in range(3, len(text) - 2)
        if text[k : k + 2].strip() and (PROMPTS[0][-1:] + text).find(text[k : k + 2]) >= 1
    )
    result, events = _gen(state, handle, prompts=PROMPTS[:1], maxNewTokens=24, stop=[stop, "no-such-stop-string"])
    out = result["outputs"][0]
    assert out["finishReason"] == "stop"
    assert out["text"] == text[: text.find(stop)]
    assert out["tokens"] < free["outputs"][0]["tokens"]
    streamed = "".join(e["text"] for e in events)
    assert streamed == out["text"] and stop not in streamed


def test_eos_finishes_a_row(env) -> None:
    state, handle, lm = env
    first = generate_texts(lm.model, lm.tokenizer, PROMPTS[:1], max_new_tokens=4)[0].ids[0]
    saved = lm.model.generation_config.eos_token_id
    lm.model.generation_config.eos_token_id = first  # the model's very first token now ends it
    try:
        result, events = _gen(state, handle, prompts=PROMPTS[:1], maxNewTokens=8)
    finally:
        lm.model.generation_config.eos_token_id = saved
    assert result["outputs"][0] == {"text": "", "tokens": 1, "finishReason": "eos"}
    assert events == []


def test_cancel_stops_within_one_token(env) -> None:
    state, handle, _ = env

    class CancelAfter(OpCtx):
        """Cancels at the 4th per-step check (after 3 tokens), as the control socket would."""

        checks = 0

        def check_cancelled(self) -> None:
            self.checks += 1
            if self.checks > 3:
                raise Cancelled("generate cancelled")

    ctx = CancelAfter(state)
    with pytest.raises(Cancelled):
        call(state, "generate", {"model": handle, "prompts": PROMPTS[:1], "maxNewTokens": 200}, ctx)
    assert ctx.checks == 4  # it stopped at the check that cancelled: no step after it
    # generate checks after each token: nothing was streamed past the 4th.
    assert ctx.events and ctx.events[-1]["tokens"] <= 4


def test_token_events_join_to_the_output_and_coalesce(env) -> None:
    state, handle, _ = env
    ctx = OpCtx(state)
    out = call(state, "generate", {"model": handle, "prompts": PROMPTS[:1], "maxNewTokens": 40}, ctx).body
    assert "".join(e["text"] for e in ctx.events) == out["outputs"][0]["text"]
    assert ctx.events[-1]["tokens"] == out["outputs"][0]["tokens"] or out["outputs"][0]["finishReason"] == "eos"
    # A tiny model on a CPU makes a token every few ms: the 50 ms interval joins them.
    assert len(ctx.events) < out["outputs"][0]["tokens"], (len(ctx.events), out["outputs"][0])


def _stream(tokenizer, ids: list[int], *, interval_s: float, stop: tuple[str, ...] = ()):
    """Feed `ids` to a TokenStreamer one step at a time, as `generate` does."""
    pieces: list[tuple[str, int]] = []
    streamer = TokenStreamer(
        tokenizer, ["x"], stop=stop, on_piece=lambda i, text, n: pieces.append((text, n)), interval_s=interval_s
    )
    streamer.put(torch.tensor([[0]]))  # the prompt
    for t in ids:
        streamer.put(torch.tensor([t]))
    streamer.end()
    return streamer.outputs()[0], pieces


@pytest.mark.parametrize("interval_s", [0.0, 1e9])
def test_streamed_pieces_hold_split_characters_and_stop_strings(env, interval_s) -> None:
    """Multi-byte characters split over byte tokens, and stop strings, streamed token by token
    or collected for the whole interval: the same output, and pieces that join to it."""
    _, _, lm = env
    text = "café über 日本 the weather ok"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split()), "the test needs characters split over several tokens"
    want = lm.tokenizer.decode(ids, skip_special_tokens=True)
    out, pieces = _stream(lm.tokenizer, ids, interval_s=interval_s)
    assert out.text == want and out.tokens == len(ids) and out.finish_reason == "length"
    assert "".join(p for p, _ in pieces) == want and not any("\ufffd" in p for p, _ in pieces)
    assert pieces[-1][1] == len(ids)
    if interval_s:
        assert len(pieces) <= 2  # the first token at once, the rest at the end
    stopped, pieces = _stream(lm.tokenizer, ids, interval_s=interval_s, stop=("日本",))
    assert stopped.text == want[: want.find("日本")] and stopped.finish_reason == "stop"
    assert "".join(p for p, _ in pieces) == stopped.text
    # The row's tokens end at the one that completed the stop string, whatever the interval.
    decode = lm.tokenizer.decode
    assert decode(stopped.ids).endswith("日本") and not decode(stopped.ids[:-1]).endswith("日本")


def test_bad_generate_input(env) -> None:
    state, handle, lm = env
    for body, path in (
        ({"prompts": ["a"], "maxNewTokens": 0}, "body.maxNewTokens"),
        ({"prompts": ["a"], "maxNewTokens": -3}, "body.maxNewTokens"),
        ({"prompts": []}, "body.prompts"),
        ({"prompts": ["a"], "topP": 0}, "body.topP"),
        ({"prompts": ["a"], "temperature": -1}, "body.temperature"),
        ({"prompts": ["a"], "stop": [""]}, "body.stop"),
        ({"prompts": ["a"], "delta": "bad name!"}, "body.delta"),
        ({"prompts": ["a"], "temperature": 1, "seed": 2**32}, "body.seed"),  # numpy's seeds are 32 bits
    ):
        with pytest.raises(BadRequest) as e:
            call(state, "generate", {"model": handle, **body})
        assert (e.value.path or "").startswith(path), (body, e.value.path)
    call(state, "generate", {"model": handle, "prompts": ["a"], "maxNewTokens": 2, "temperature": 1, "seed": 2**32 - 1})
    with pytest.raises(BadRequest) as e:
        call(state, "generate", {"model": handle, "prompts": ["a"], "delta": ["x", None]})
    assert e.value.path == "delta"
    limit = lm.model.config.max_position_embeddings
    with pytest.raises(BadRequest) as e:
        call(state, "generate", {"model": handle, "prompts": ["a"], "maxNewTokens": limit})
    assert e.value.path == "max_new_tokens"
