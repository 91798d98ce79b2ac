"""The supervised fine-tuning loop. One screen, top to bottom: setup, then epochs of
(batch -> class logits -> cross-entropy -> accumulate -> clip -> step -> report).

Every micro-batch's loss and every step's gradient norm are checked before the optimizer
moves: a non-finite one raises `NonFinite` naming the step, so a diverged run stops at once
instead of training (and reporting) NaNs. The weights then hold the previous step's update;
the caller decides what becomes of them (the `train` op rolls back or marks the model).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F

from .. import distributed
from ..data import LabeledSet, PromptFormat, encode_batch, iterate_batches
from ..errors import BadRequest, NonFinite
from ..evaluation import classification_report, predict
from .memory import peak_memory_bytes, reset_peak_memory
from .optim import full_parameter_groups
from .parallel import Parallel, make_trainer

if TYPE_CHECKING:
    from .masking import HeadMask


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3
    lr: float = 5e-4
    batch_size: int = 16
    accumulate: int = 1  # micro-batches per optimizer step
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    warmup: float = 0.06  # < 1: fraction of all steps; >= 1: a number of steps
    weight_decay: float = 0.01
    clip: float = 1.0  # max gradient norm; 0 disables clipping
    seed: int = 0
    max_length: int = 128
    loss: Literal["class", "vocab"] = "class"  # CE over class logits, or over the whole vocabulary
    eval_batch_size: int = 64
    parallel: Parallel = "ddp"  # with several ranks: DDP, or FSDP2 (full and ctsft); see training/parallel.py


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def train_sft(
    model: Any,
    tokenizer: Any,
    train_set: LabeledSet,
    fmt: PromptFormat,
    token_ids: Sequence[int],
    cfg: TrainConfig,
    *,
    valid: LabeledSet | None = None,
    emit: Callable[[dict[str, Any]], None] = lambda e: None,
    check: Callable[[], None] = lambda: None,
    param_groups: list[dict[str, Any]] | None = None,
    head_mask: HeadMask | None = None,
) -> dict[str, Any]:
    """Train in place. `param_groups` (default: every parameter, decay on matrices only) lets
    callers restrict what trains; `emit` receives step/epoch events; `check` raises to cancel.
    `head_mask`: the mask behind `param_groups`, which FSDP applies to gradient shards.

    Under several ranks (training/parallel.py) every rank runs this loop on the same global
    batches, each on its share; losses, counts and the gradient norm reported are global."""
    if len(train_set) == 0:
        raise BadRequest("training set is empty", path="data")
    torch.manual_seed(cfg.seed)
    groups = param_groups if param_groups is not None else full_parameter_groups(model, cfg.weight_decay)
    trainer = make_trainer(model, groups, parallel=cfg.parallel, head_mask=head_mask)
    try:
        return _train(model, trainer, tokenizer, train_set, fmt, token_ids, cfg, valid, emit, check)
    finally:
        trainer.close()


def _train(
    model: Any,
    trainer: Any,
    tokenizer: Any,
    train_set: LabeledSet,
    fmt: PromptFormat,
    token_ids: Sequence[int],
    cfg: TrainConfig,
    valid: LabeledSet | None,
    emit: Callable[[dict[str, Any]], None],
    check: Callable[[], None],
) -> dict[str, Any]:
    device = next(model.parameters()).device
    groups = trainer.groups
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "name"} for g in groups], lr=cfg.lr)
    micro_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    steps_per_epoch = math.ceil(micro_per_epoch / cfg.accumulate)
    total = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup * total) if cfg.warmup < 1 else int(cfg.warmup)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, cfg.schedule))
    targets_of = torch.tensor(list(token_ids), device=device)
    emit(
        {
            "type": "start",
            "totalSteps": total,
            "epochs": cfg.epochs,
            "examples": len(train_set),
            "groups": [
                {
                    "name": g.get("name", str(i)),
                    "tensors": len(g["params"]),
                    "params": sum(p.numel() for p in g["params"]),
                    "weightDecay": g["weight_decay"],
                }
                for i, g in enumerate(groups)
            ],
        }
    )

    reset_peak_memory(device)
    started = time.perf_counter()
    step, seen, tokens = 0, 0, 0
    history: list[dict[str, Any]] = []
    epoch_loss = 0.0
    world = trainer.world
    try:
        # Every rank runs this loop in step: a failure only one rank has stops them all.
        with distributed.lockstep():
            for epoch in range(cfg.epochs):
                trainer.module.train()
                epoch_loss, epoch_batches = 0.0, 0
                batches = list(iterate_batches(train_set, cfg.batch_size, seed=cfg.seed + epoch))
                for i, batch in enumerate(batches):
                    check()
                    # The last accumulation group of an epoch may be short: average over what it has.
                    group_start = (i // cfg.accumulate) * cfg.accumulate
                    group_size = min(cfg.accumulate, len(batches) - group_start)
                    part = trainer.share(len(batch.texts))  # this rank's rows; all of them with one rank
                    enc = encode_batch(tokenizer, batch.texts[part.lo : part.hi], fmt, cfg.max_length)
                    labels = torch.tensor(batch.labels[part.lo : part.hi], device=device)
                    logits = trainer.logits(enc, token_ids if cfg.loss == "class" else None).float()
                    loss = F.cross_entropy(logits, labels if cfg.loss == "class" else targets_of[labels])
                    # The global batch's mean loss (the rank's mean, weighted by its share).
                    loss_value, batch_tokens = trainer.global_sum(
                        [loss.item() * part.weight / world, float(enc["attention_mask"].sum()) * (part.weight > 0)]
                    )
                    if not math.isfinite(loss_value):
                        raise _diverged("loss", loss_value, step + 1, total, epoch, i, cfg, schedule.get_last_lr()[0])
                    (loss * part.weight / group_size if world > 1 else loss / group_size).backward()
                    epoch_loss += loss_value
                    epoch_batches += 1
                    seen += len(batch.texts)
                    tokens += int(batch_tokens)
                    if i + 1 != group_start + group_size:
                        continue
                    trainer.reduce_grads()
                    grad_norm = trainer.clip(params, cfg.clip if cfg.clip > 0 else float("inf"))
                    if not math.isfinite(grad_norm):
                        raise _diverged(
                            "gradient norm", grad_norm, step + 1, total, epoch, i, cfg, schedule.get_last_lr()[0]
                        )
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    elapsed = time.perf_counter() - started
                    emit(
                        {
                            "type": "step",
                            "step": step,
                            "totalSteps": total,
                            "epoch": epoch + 1,
                            "loss": loss_value,
                            "lr": schedule.get_last_lr()[0],
                            "gradNorm": grad_norm,
                            "examplesPerS": seen / elapsed,
                            "tokensPerS": tokens / elapsed,
                            "elapsed": elapsed,
                            "eta": elapsed / step * (total - step),
                        }
                    )
                mean_loss = epoch_loss / max(1, epoch_batches)
                record: dict[str, Any] = {"type": "epoch", "epoch": epoch + 1, "trainLoss": mean_loss}
                if valid is not None:
                    trainer.module.eval()
                    preds, _ = predict(
                        trainer.eval_model(),
                        tokenizer,
                        valid,
                        fmt,
                        token_ids,
                        batch_size=cfg.eval_batch_size,
                        max_length=cfg.max_length,
                        check=check,
                    )
                    report = classification_report(valid.labels, preds, valid.label_names)
                    record["valid"] = {"accuracy": report["accuracy"], "macroF1": report["macroF1"], "n": report["n"]}
                history.append(record)
                emit(record)
            trainer.finish()
    except BaseException:
        # Failed, diverged or cancelled: no half-accumulated gradient stays on the model.
        optimizer.zero_grad(set_to_none=True)
        trainer.module.eval()
        model.eval()
        raise
    trainer.module.eval()
    model.eval()
    elapsed = time.perf_counter() - started
    trainable = sum(p.numel() for p in params)
    total_params = sum(p.numel() for p in model.parameters())
    return {
        "steps": step,
        "epochs": cfg.epochs,
        "trainLoss": history[-1]["trainLoss"] if history else None,
        "valid": history[-1].get("valid") if history else None,
        "history": history,
        "paramsTrainable": trainable,
        "paramsTotal": total_params,
        "paramsFraction": trainable / total_params,
        "seconds": elapsed,
        "examplesPerS": seen / elapsed if elapsed else 0.0,
        "tokensPerS": tokens / elapsed if elapsed else 0.0,
        "peakMemory": peak_memory_bytes(device),  # this rank's (rank 0's, on the wire)
        **({"ranks": {"world": trainer.world, "parallel": trainer.mode}} if trainer.world > 1 else {}),
    }


def _diverged(
    what: str, value: float, step: int, total: int, epoch: int, batch: int, cfg: TrainConfig, lr: float
) -> NonFinite:
    """The error for a non-finite loss or gradient norm at optimizer step `step` (1-based)."""
    return NonFinite(
        f"training diverged at step {step} of {total} (epoch {epoch + 1}, batch {batch + 1}): the {what} is "
        f"{value}; the optimizer did not take this step. The learning rate ({lr:.3g} at this step, peak "
        f"{cfg.lr:.3g}) is likely too high",
        detail=f"step={step} epoch={epoch + 1} batch={batch + 1} {what.replace(' ', '_')}={value} lr={lr!r}",
    )
