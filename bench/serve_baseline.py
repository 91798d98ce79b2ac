"""Plain-transformers baselines of the serving benchmark (issue 12), in one Python process with
no ctsft code: the class-logit computation `predict` does, in a loop over batches, and
transformers' `generate`. bench/serve.ts runs it with the runtime's Python on the same
checkpoint, texts and settings, and prints both sides' figures.

Reads a JSON spec (path in argv[1]): checkpoint, texts, template, words (one answer word per
label), batchSize, prompt, maxNewTokens, device, threads. Then answers commands on stdin, one
per line: `predict` or `generate` runs that part once and prints one JSON line (its seconds,
and the predicted class indices or the generated tokens and text, so the bench can check both
sides computed the same thing); `quit` ends it.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def encode(tok, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, mask and each row's last prompt position (trailing special tokens dropped)."""
    enc = tok(prompts, return_special_tokens_mask=True)
    rows = []
    for ids, special in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True):
        while ids and special[-1]:
            ids, special = ids[:-1], special[:-1]
        rows.append(ids)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        input_ids[b, : len(r)] = torch.tensor(r)
        mask[b, : len(r)] = 1
    return input_ids, mask, torch.tensor([len(r) - 1 for r in rows])


@torch.no_grad()
def classify(model, tok, texts: list[str], template: str, label_ids: list[int], batch_size: int, device: str) -> list:
    """Class logits = the LM logits of each label word's first token at the last prompt position."""
    head = model.get_output_embeddings().weight[label_ids]  # [C, D]
    out: list[int] = []
    for i in range(0, len(texts), batch_size):
        ids, mask, last = encode(tok, [template.replace("{text}", t) for t in texts[i : i + batch_size]])
        result = model.base_model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
        hidden = result.last_hidden_state  # [B, T, D]
        h = hidden[torch.arange(hidden.shape[0], device=device), last.to(device)]  # [B, D]
        logits = h @ head.T  # [B, C]
        out.extend(torch.softmax(logits, -1).argmax(-1).tolist())
    return out


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    device = spec["device"]
    torch.set_num_threads(spec["threads"])
    tok = AutoTokenizer.from_pretrained(spec["checkpoint"])
    model = AutoModelForCausalLM.from_pretrained(spec["checkpoint"], torch_dtype=torch.float32).to(device).eval()
    # Each label word's first token as it continues the prompt (the token the model would emit there).
    prompt_ids = tok(spec["template"].replace("{text}", ""), add_special_tokens=False)["input_ids"]
    label_ids = [
        tok(spec["template"].replace("{text}", "") + w, add_special_tokens=False)["input_ids"][len(prompt_ids)]
        for w in spec["words"]
    ]
    enc = {k: v.to(device) for k, v in tok([spec["prompt"]], return_tensors="pt").items()}
    eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None else tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else eos
    eos_ids = set(eos if isinstance(eos, list) else [eos])

    def predict() -> dict:
        t0 = time.perf_counter()
        predicted = classify(model, tok, spec["texts"], spec["template"], label_ids, spec["batchSize"], device)
        return {"seconds": time.perf_counter() - t0, "predicted": predicted}

    @torch.no_grad()
    def generate() -> dict:
        t0 = time.perf_counter()
        out = model.generate(
            **enc, max_new_tokens=spec["maxNewTokens"], do_sample=False, pad_token_id=pad, eos_token_id=eos
        )
        seconds = time.perf_counter() - t0
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        text = tok.decode([t for t in new if t not in eos_ids], skip_special_tokens=True)
        return {"seconds": seconds, "tokens": len(new), "text": text}

    # One run per command line, so the bench can interleave these runs with the SDK's own
    # (both sides then see the same load on a shared machine).
    print(json.dumps({"ready": True, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        print(json.dumps({"predict": predict, "generate": generate}[command]()), flush=True)


if __name__ == "__main__":
    main()
