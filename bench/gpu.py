"""GPU benchmark: full fine-tuning vs CT-SFT (delta) throughput, MFU and peak memory, and
`cdt` scoring time of every head, on a Qwen2-0.5B-shaped model, in one run.

On the GPU machine, from the repository root (writes the JSON to the file as each phase
ends, so a run cut short still leaves what it measured; the last stdout line is the same JSON):

    PYTHONPATH=py_runtime python bench/gpu.py --out "$OUT/gpu.json"

Testing here, on CPU in float32 with a tiny model (about 10 s on 2 idle cores; well under a minute):

    PYTHONPATH=py_runtime .venv/bin/python bench/gpu.py --tiny

On a multi-GPU machine, `--ranks N` re-launches this script under torchrun as N ranks (one
GPU each, nccl) and times the `full` and `ctsft` phases data-parallel through the runtime's
own trainer (`training/parallel.py`: DDP, or FSDP2 with `--parallel fsdp`), each rank on its
own batch of `--batch` rows (so the global batch is N x --batch); rank 0 writes the JSON,
with `tokens_per_s` for all ranks together. Compare with a `--ranks 1` run for the scaling:

    PYTHONPATH=py_runtime python bench/gpu.py --ranks 2 --phases full,ctsft --out "$OUT/gpu-2.json"

What the GPU machine needs: torch with CUDA and transformers (which brings numpy,
safetensors, tokenizers, huggingface_hub), and this repository's `py_runtime` on PYTHONPATH.
Nothing else: the modules used (`ctsft_runtime.heads`, `.training` incl. `.masking`,
`.models.classify`, `.scoring.cdt`, `.scoring.margins`) import neither pyzmq, msgspec, peft,
accelerate nor gguf (test/py/bench/test_gpu_script.py runs this script with those blocked).
No weights or data are fetched: the model is built from a config with random weights and
the inputs are random token ids. The runtime's modules are imported inside each phase, so
an incompatible transformers version fails that phase (reported in the JSON), not the run.

Phases (each catches CUDA OOM and any other error into its own JSON entry; CUDA peak memory
is reset between phases and the previous phase's optimizer state and gradients are freed):

- `full`: full fine-tuning steps, the train loop of `training/sft.py` (class logits -> CE ->
  backward -> clip -> AdamW step), batch x seq random tokens, median step time after warm-up.
- `ctsft`: the same with `apply_head_mask(..., mechanism="delta")` on a fixed circuit of 8
  heads (kv="group") plus every norm; only the mask's parameter groups train.
- `forward`: plain `class_logits` forward (no grad) over the cdt examples, same batches.
- `cdt`: label-balanced mean baseline mu (as `scoring.mean_baseline`, via `heads.capture_z`),
  then `scoring.cdt.decompose_heads` for all L x H heads over the same examples, plus the
  `cdt` scorer's margin. A CUDA OOM halves the chunk and retries the batch. If the projected
  time passes --cdt-budget-s the phase stops early and extrapolates to all examples.

MFU = 6 * N * tokens/s / peak bf16 dense FLOP/s (N = all parameters, tied embedding once);
see the `mfu_definition` field, also for CT-SFT and the non-embedding variant.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM

# Qwen2-0.5B's geometry (its config.json), and the --tiny one for CPU tests.
FULL_SHAPE = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "vocab_size": 151936,
}
TINY_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 1000,
}
LABEL_TOKENS = [100, 200, 300]  # 3 classes: the label words' first tokens
CIRCUIT_HEADS = 8

# Peak dense bf16 tensor-core FLOP/s (no sparsity), by a substring of the device name.
PEAK_BF16 = [
    ("H200", 989e12),
    ("H100 SXM", 989e12),
    ("H100 80GB HBM3", 989e12),  # how torch names the SXM part
    ("H100 PCIe", 756e12),
    ("A100", 312e12),
]

MFU_DEFINITION = (
    "mfu = 6 * params * tokens_per_s / peak_flops, params = all parameters (tied embedding counted once), "
    "peak_flops = the device's dense bf16 peak (table in bench/gpu.py; null when unknown); no attention-score "
    "FLOPs. mfu_nonembedding uses params minus the embedding (class_logits multiplies only the label tokens' "
    "rows of the tied unembedding, so the embedding does almost no matmul work). For ctsft the same 6 * N "
    "convention is used although frozen weights get no weight gradient (actual work is about 4 * N per token): "
    "it is full-FT-equivalent throughput, directly comparable with full's, not hardware utilisation."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tiny", action="store_true", help="tiny model on CPU in float32 (for tests)")
    p.add_argument("--cpu", action="store_true", help="run on CPU even with CUDA (implied by --tiny)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bfloat16 on CUDA, float32 on CPU")
    p.add_argument("--out", type=Path, help="also write the JSON here (rewritten after every phase)")
    p.add_argument("--batch", type=int, help="training batch size (default 8; tiny 4)")
    p.add_argument("--seq", type=int, help="training sequence length (default 512; tiny 64)")
    p.add_argument("--steps", type=int, help="timed training steps (default 10; tiny 4)")
    p.add_argument("--warmup", type=int, help="untimed warm-up steps (default 3; tiny 1)")
    p.add_argument("--cdt-examples", type=int, default=256)
    p.add_argument("--cdt-len", type=int, default=64, help="tokens per cdt example")
    p.add_argument("--cdt-batch", type=int, default=32, help="examples per decompose_heads call")
    p.add_argument("--cdt-chunk", type=int, help="source heads per chunk (default 48 on CUDA, 16 on CPU)")
    p.add_argument("--cdt-budget-s", type=float, default=210.0, help="stop cdt early and extrapolate past this")
    p.add_argument("--peak-flops", type=float, help="override the device's peak FLOP/s for MFU")
    p.add_argument("--phases", default="full,ctsft,forward,cdt", help="comma-separated subset to run")
    p.add_argument("--ranks", type=int, default=1, help="run the training phases as N torchrun ranks (one GPU each)")
    p.add_argument("--parallel", choices=["ddp", "fsdp"], default="ddp", help="with --ranks: how the ranks train")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def memory(device: torch.device) -> dict[str, Any]:
    if device.type == "cuda":
        return {
            "kind": "cuda_max_memory_allocated",
            "bytes": int(torch.cuda.max_memory_allocated(device)),
            "reserved_bytes": int(torch.cuda.max_memory_reserved(device)),
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Whole-process peak since start (never goes down): an upper bound for every phase.
    return {"kind": "cpu_max_rss_process", "bytes": int(rss if sys.platform == "darwin" else rss * 1024)}


OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


def run_phase(name: str, device: torch.device, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one phase with fresh peak-memory stats; OOM and other errors become JSON."""
    free(device)
    start_bytes = int(torch.cuda.memory_allocated(device)) if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    log(f"phase {name} ...")
    t0 = time.perf_counter()
    try:
        result = fn()
    except OOM as e:
        result = {"error": "oom", "message": str(e)[:800]}
    except Exception as e:
        result = {"error": type(e).__name__, "message": str(e)[:1500], "traceback": traceback.format_exc()[-4000:]}
    # Outside the except block: the traceback (and the tensors its frames hold) is gone.
    free(device)
    result["phase_wall_s"] = time.perf_counter() - t0
    result["memory_at_start_bytes"] = start_bytes
    result["peak_memory"] = memory(device)
    log(f"phase {name}: {result.get('error', 'ok')} in {result['phase_wall_s']:.1f} s")
    return result


def peak_for_name(name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a CUDA device by its torch name; None when not in the table."""
    return next((v for k, v in PEAK_BF16 if k in name), None)


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    return peak_for_name(torch.cuda.get_device_name(device)) if device.type == "cuda" else None


def nvidia_smi() -> dict[str, str] | None:
    fields = "name,driver_version,memory.total,power.limit"
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.strip().splitlines()[0] if out.strip() else ""
    return dict(zip(fields.split(","), (v.strip() for v in first.split(",")), strict=False)) or None


def environment(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_cuda": torch.version.cuda,
        "device_type": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free_b, total_b = torch.cuda.mem_get_info(device)
        env.update(
            device_name=torch.cuda.get_device_name(device),
            device_count=torch.cuda.device_count(),
            capability=f"{props.major}.{props.minor}",
            multiprocessors=props.multi_processor_count,
            memory_total_bytes=int(total_b),
            memory_free_at_start_bytes=int(free_b),
            cudnn=torch.backends.cudnn.version(),
            nvidia_smi=nvidia_smi(),
        )
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


# ----------------------------------------------------------------------------- model and data


def build_model(shape: dict[str, int], device: torch.device, dtype: torch.dtype) -> Qwen2ForCausalLM:
    cfg = Qwen2Config(**shape, tie_word_embeddings=True, rms_norm_eps=1e-6, max_position_embeddings=32768)
    torch.manual_seed(0)
    with torch.device(device):  # initialise on the device (float32), then cast
        model = Qwen2ForCausalLM(cfg)
    return model.to(device=device, dtype=dtype)


def circuit(n_layers: int, n_heads: int) -> list[tuple[int, int]]:
    """CIRCUIT_HEADS distinct (layer, head) pairs spread over the depth, first to last layer."""
    out: list[tuple[int, int]] = []
    for k in range(min(CIRCUIT_HEADS, n_layers * n_heads)):
        pos = round(k * (n_layers - 1) / max(1, CIRCUIT_HEADS - 1)) * n_heads + (5 * k) % n_heads
        while divmod(pos, n_heads) in out:  # taken: the next head, wrapping to the next layer
            pos = (pos + 1) % (n_layers * n_heads)
        out.append(divmod(pos, n_heads))
    return out


def encoded(n: int, t: int, vocab: int, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, t), generator=g)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones(n, t, dtype=torch.long, device=device),
        "last_index": torch.full((n,), t - 1, dtype=torch.long, device=device),
    }


def rows(enc: dict[str, torch.Tensor], a: int, b: int) -> dict[str, torch.Tensor]:
    return {k: v[a:b] for k, v in enc.items()}


# ----------------------------------------------------------------------------- phases


def train_phase(
    model: torch.nn.Module,
    args: argparse.Namespace,
    device: torch.device,
    params_total: int,
    params_nonembed: int,
    peak: float | None,
    ctsft_heads: list[tuple[int, int]] | None,
) -> dict[str, Any]:
    """Training steps as in `train_sft`; ctsft_heads None = full fine-tuning."""
    from ctsft_runtime.training import apply_head_mask, full_parameter_groups
    from ctsft_runtime.training.parallel import make_trainer

    mask = trainer = None
    out: dict[str, Any] = {"batch": args.batch, "seq": args.seq, "warmup_steps": args.warmup, "steps": args.steps}
    try:
        if ctsft_heads is None:
            groups = full_parameter_groups(model, 0.01)
        else:
            mask = apply_head_mask(model, None, ctsft_heads, mechanism="delta")
            groups = mask.param_groups()
            rep = mask.report()
            out.update(
                mechanism="delta",
                kv=rep["kv"],
                heads=rep["heads"],
                touched_heads=len(rep["touchedHeads"]),  # unselected heads sharing a KV head
                norms=len(rep["norms"]),
                trainable_params=rep["trainableParams"],
                optimizer_params=rep["optimizerParams"],
                trainable_fraction=rep["fraction"],
            )
        # One rank: the model as it is. Several: DDP or FSDP2, as the train op would (--parallel).
        trainer = make_trainer(model, groups, parallel=args.parallel, head_mask=mask)
        groups = trainer.groups
        params = [p for g in groups for p in g["params"]]
        if ctsft_heads is None:
            out["trainable_params"] = sum(p.numel() for p in params)
        opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "name"} for g in groups], lr=1e-5)
        # Each rank its own rows: the global batch is ranks x batch.
        enc = encoded(args.batch, args.seq, model.config.vocab_size, device, seed=1 + trainer.rank)
        gen = torch.Generator().manual_seed(2 + trainer.rank)
        labels = torch.randint(0, len(LABEL_TOKENS), (args.batch,), generator=gen).to(device)
        trainer.module.train()
        times, losses = [], []
        for step in range(args.warmup + args.steps):
            sync(device)
            t0 = time.perf_counter()
            logits = trainer.logits(enc, LABEL_TOKENS).float()
            loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            trainer.reduce_grads()
            trainer.clip(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync(device)
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
            losses.append(loss.item())
        step_s = statistics.median(times)
        tps = trainer.world * args.batch * args.seq / step_s  # all ranks together
        out.update(
            step_ms_median=step_s * 1e3,
            step_ms_min=min(times) * 1e3,
            step_ms_max=max(times) * 1e3,
            tokens_per_s=tps,
            model_flops_per_s=6 * params_total * tps,
            mfu=6 * params_total * tps / peak if peak else None,
            mfu_nonembedding=6 * params_nonembed * tps / peak if peak else None,
            loss_first=losses[0],
            loss_last=losses[-1],
            loss_finite=all(math.isfinite(x) for x in losses),
        )
        del opt, groups, params
        return out
    finally:
        if trainer is not None:
            trainer.close()
        model.eval()
        for p in model.parameters():
            p.grad = None
        if mask is not None:
            mask.remove()  # frozen weights back to their bits; the model is plain again


def forward_phase(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from ctsft_runtime.models.classify import class_logits

    enc = encoded(args.cdt_examples, args.cdt_len, model.config.vocab_size, device, seed=3)
    model.eval()
    passes = []
    with torch.no_grad():
        class_logits(model, rows(enc, 0, args.cdt_batch), LABEL_TOKENS)  # warm-up
        for _ in range(3):
            sync(device)
            t0 = time.perf_counter()
            for a in range(0, args.cdt_examples, args.cdt_batch):
                class_logits(model, rows(enc, a, a + args.cdt_batch), LABEL_TOKENS)
            sync(device)
            passes.append(time.perf_counter() - t0)
    s = statistics.median(passes)
    return {
        "examples": args.cdt_examples,
        "tokens_per_example": args.cdt_len,
        "batch": args.cdt_batch,
        "seconds": s,
        "seconds_min": min(passes),
        "tokens_per_s": args.cdt_examples * args.cdt_len / s,
    }


def cdt_phase(model: torch.nn.Module, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from ctsft_runtime.heads import build_head_map, capture_z
    from ctsft_runtime.scoring.cdt import decompose_heads
    from ctsft_runtime.scoring.margins import margin

    hmap = build_head_map(model)
    n, bsz = args.cdt_examples, args.cdt_batch
    enc = encoded(n, args.cdt_len, model.config.vocab_size, device, seed=3)
    gold_all = (torch.arange(n) % len(LABEL_TOKENS)).to(device)  # label-balanced
    model.eval()
    out: dict[str, Any] = {"examples": n, "tokens_per_example": args.cdt_len, "batch": bsz}

    # mu: the label-balanced mean of z over non-pad positions, as scoring.mean_baseline.
    sync(device)
    t0 = time.perf_counter()
    n_cls = len(LABEL_TOKENS)
    sums = torch.zeros(n_cls, hmap.n_layers, hmap.n_heads, hmap.head_dim, dtype=torch.float64, device=device)
    counts = torch.zeros(n_cls, dtype=torch.float64, device=device)
    with torch.no_grad():
        for a in range(0, n, bsz):
            e = rows(enc, a, a + bsz)
            with capture_z(hmap) as rec:
                model(input_ids=e["input_ids"], attention_mask=e["attention_mask"], use_cache=False)
            onehot = torch.nn.functional.one_hot(gold_all[a : a + bsz], n_cls).to(torch.float64)
            weights = onehot[:, :, None] * e["attention_mask"][:, None, :].to(torch.float64)  # [B, C, T]
            for layer in range(hmap.n_layers):
                sums[:, layer] += torch.einsum("bct,bthd->chd", weights, rec.z[layer].to(torch.float64))
            counts += weights.sum(dim=(0, 2))
    mu = (sums / counts[:, None, None, None]).mean(dim=0).to(torch.float32)
    sync(device)
    out["baseline_s"] = time.perf_counter() - t0

    sources = [(layer, head) for layer in range(hmap.n_layers) for head in range(hmap.n_heads)]
    chunk = args.cdt_chunk or (48 if device.type == "cuda" else 16)
    out.update(sources=len(sources), chunk_start=chunk)
    batch_s: list[float] = []
    oom_retries = 0
    scores = []
    started = time.perf_counter()
    a = 0
    while a < n:
        e = rows(enc, a, a + bsz)
        gold = gold_all[a : a + bsz]
        sync(device)
        t0 = time.perf_counter()
        oom = False
        try:
            rel, _irrel = decompose_heads(
                model, hmap, e["input_ids"], e["attention_mask"], e["last_index"], LABEL_TOKENS, mu, sources,
                chunk=chunk,
            )  # fmt: skip
            scores.append(margin(rel, gold).float().cpu())  # the `cdt` scorer's [S, B]
            del rel, _irrel
        except OOM:
            if chunk == 1:
                raise
            oom = True
        if oom:  # retry the batch with half the chunk, outside the except (frees the frames)
            free(device)
            chunk, oom_retries = max(1, chunk // 2), oom_retries + 1
            log(f"cdt: OOM, chunk -> {chunk}")
            continue
        sync(device)
        batch_s.append(time.perf_counter() - t0)
        a += len(gold)
        elapsed = time.perf_counter() - started
        log(f"cdt: {a}/{n} examples, {elapsed:.1f} s")
        if a < n and elapsed + statistics.mean(batch_s) > args.cdt_budget_s:
            log(f"cdt: stopping early, budget {args.cdt_budget_s} s")
            break
    done = a
    seconds = sum(batch_s)
    per_example = seconds / done
    sc = torch.cat(scores, dim=1)
    out.update(
        chunk_final=chunk,
        oom_retries=oom_retries,
        examples_scored=done,
        complete=done >= n,
        seconds=seconds,
        seconds_per_batch=batch_s,
        seconds_per_example=per_example,
        seconds_all_examples=seconds if done >= n else per_example * n,
        head_examples_per_s=len(sources) * done / seconds,
        scores_finite=bool(torch.isfinite(sc).all()),
    )
    return out


# ----------------------------------------------------------------------------- main


def relaunch_under_torchrun(args: argparse.Namespace, argv: list[str]) -> int:
    """`--ranks N` outside torchrun: run this same script as N ranks, and return their status."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(args.ranks)]
    cmd += ["--monitor-interval", "0.5", "--master-addr", "127.0.0.1", "--master-port", str(port)]
    return subprocess.call([*cmd, str(Path(__file__).resolve()), *argv])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ranks = None
    if args.ranks > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            return relaunch_under_torchrun(args, sys.argv[1:] if argv is None else argv)
        from ctsft_runtime import distributed

        ranks = distributed.init("cpu" if args.tiny or args.cpu else "auto")
        if set(args.phases.split(",")) - {"full", "ctsft"}:
            args.phases = "full,ctsft"  # forward and cdt have nothing to spread over ranks
    tiny = args.tiny
    args.batch = args.batch or (4 if tiny else 8)
    args.seq = args.seq or (64 if tiny else 512)
    args.steps = args.steps or (4 if tiny else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if tiny else 3)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - {"full", "ctsft", "forward", "cdt"}
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")

    result: dict[str, Any] = {"bench": "gpu", "tiny": tiny, "complete": False}
    if ranks is not None:
        result["ranks"] = {"world": ranks.world, "parallel": args.parallel, "backend": ranks.backend}

    def emit(final: bool = False) -> None:
        if ranks is not None and not ranks.leader:
            return  # rank 0 reports
        text = json.dumps(result, default=str)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_name(args.out.name + ".tmp")
            tmp.write_text(text + "\n")
            tmp.replace(args.out)
        if final:
            print(text, flush=True)

    if tiny or args.cpu:
        device = torch.device("cpu")
    elif ranks is not None and ranks.device != "cpu":
        device = torch.device(ranks.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        result["error"] = "CUDA is not available (use --tiny, or --cpu, to run on CPU)"
        result["env"] = environment(torch.device("cpu"), torch.float32)
        emit(final=True)
        return 2
    if args.dtype:
        dtype = getattr(torch, args.dtype)
    elif device.type == "cuda" and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    else:
        dtype = torch.float32
    started = time.perf_counter()
    result["env"] = environment(device, dtype)
    result["dtype"] = result["env"]["dtype"]
    result["device_name"] = result["env"]["device_name"]
    result["torch"], result["transformers"] = torch.__version__, transformers.__version__
    peak = peak_flops(device, args.peak_flops)
    result["peak_flops"] = peak
    result["mfu_definition"] = MFU_DEFINITION

    shape = TINY_SHAPE if tiny else FULL_SHAPE
    t0 = time.perf_counter()
    model = build_model(shape, device, dtype)
    sync(device)
    params_total = sum(p.numel() for p in model.parameters())
    params_embed = model.get_input_embeddings().weight.numel()
    heads = circuit(shape["num_hidden_layers"], shape["num_attention_heads"])
    result["model"] = {
        "family": "qwen2 (random init from Qwen2Config, no weights fetched)",
        **shape,
        "tie_word_embeddings": True,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "params": params_total,
        "params_nonembedding": params_total - params_embed,
        "build_s": time.perf_counter() - t0,
    }
    result["params"] = params_total
    result["circuit"] = [list(h) for h in heads]
    emit()

    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "full": lambda: train_phase(model, args, device, params_total, params_total - params_embed, peak, None),
        "ctsft": lambda: train_phase(model, args, device, params_total, params_total - params_embed, peak, heads),
        "forward": lambda: forward_phase(model, args, device),
        "cdt": lambda: cdt_phase(model, args, device),
    }
    for name in phases:
        result[name] = run_phase(name, device, runners[name])
        emit()

    full, ct = result.get("full", {}), result.get("ctsft", {})
    if "tokens_per_s" in full and "tokens_per_s" in ct:
        result["ctsft_vs_full"] = {
            "tokens_per_s": ct["tokens_per_s"] / full["tokens_per_s"],
            "peak_memory": ct["peak_memory"]["bytes"] / full["peak_memory"]["bytes"] if device.type == "cuda" else None,
        }
    fw, cd = result.get("forward", {}), result.get("cdt", {})
    if "seconds" in fw and "seconds_all_examples" in cd:
        result["cdt_vs_forward"] = cd["seconds_all_examples"] / fw["seconds"]
    result["errors"] = [n for n in phases if "error" in result[n]]
    result["wall_s"] = time.perf_counter() - started
    result["complete"] = True
    emit(final=True)
    if ranks is not None:
        from ctsft_runtime import distributed

        distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
