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
from typing import Any, Literal

import torch
import torch.nn.functional as F

from ..data import LabeledSet, PromptFormat, encode_batch, iterate_batches
from ..errors import BadRequest, NonFinite
from ..evaluation import classification_report, predict
from ..models.classify import class_logits
from .memory import peak_memory_bytes, reset_peak_memory
from .optim import full_parameter_groups


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
) -> dict[str, Any]:
    """Train in place. `param_groups` (default: every parameter, decay on matrices only) lets
    callers restrict what trains; `emit` receives step/epoch events; `check` raises to cancel."""
    if len(train_set) == 0:
        raise BadRequest("training set is empty", path="data")
    device = next(model.parameters()).device
    torch.manual_seed(cfg.seed)
    groups = param_groups if param_groups is not None else full_parameter_groups(model, cfg.weight_decay)
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
    try:
        for epoch in range(cfg.epochs):
            model.train()
            epoch_loss, epoch_batches = 0.0, 0
            batches = list(iterate_batches(train_set, cfg.batch_size, seed=cfg.seed + epoch))
            for i, batch in enumerate(batches):
                check()
                # The last accumulation group of an epoch may be short: average over what it has.
                group_start = (i // cfg.accumulate) * cfg.accumulate
                group_size = min(cfg.accumulate, len(batches) - group_start)
                enc = encode_batch(tokenizer, batch.texts, fmt, cfg.max_length)
                labels = torch.tensor(batch.labels, device=device)
                logits = class_logits(model, enc, token_ids if cfg.loss == "class" else None).float()
                loss = F.cross_entropy(logits, labels if cfg.loss == "class" else targets_of[labels])
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    raise _diverged("loss", loss_value, step + 1, total, epoch, i, cfg, schedule.get_last_lr()[0])
                (loss / group_size).backward()
                epoch_loss += loss_value
                epoch_batches += 1
                seen += len(batch.texts)
                tokens += int(enc["attention_mask"].sum())
                if i + 1 != group_start + group_size:
                    continue
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip if cfg.clip > 0 else float("inf")))
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
                preds, _ = predict(
                    model,
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
    except BaseException:
        # Failed, diverged or cancelled: no half-accumulated gradient stays on the model.
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        raise
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
        "peakMemory": peak_memory_bytes(device),
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
