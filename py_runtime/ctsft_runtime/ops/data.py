"""Dataset ops: load a labeled set behind a handle; write the synthetic multilingual task."""

from __future__ import annotations

import msgspec

from .common import DataRef, dataset_info, resolve_data
from .context import OpContext, Reply
from .fields import NonEmpty, Positive
from .registry import op


class DataLoadBody(msgspec.Struct, forbid_unknown_fields=True):
    data: DataRef


class SyntheticBody(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    out: NonEmpty
    seed: int = 0
    languages: dict[str, float] | None = None  # name -> distance from the source (0..1)
    n_train: Positive = 300
    n_valid: Positive = 100
    n_test: Positive = 300


@op("data.load", DataLoadBody)
def load(ctx: OpContext, body: DataLoadBody) -> Reply:
    ds = resolve_data(ctx.state, body.data, "data")
    handle = ctx.state.add(ctx.state.datasets, "d", ds)
    return Reply({"handle": handle, "info": dataset_info(ds)})


@op("data.synthetic", SyntheticBody)
def synthetic(ctx: OpContext, body: SyntheticBody) -> Reply:
    from ..data import make_task, write_task_csv

    task = make_task(body.seed, body.languages, body.n_train, body.n_valid, body.n_test)
    out = ctx.state.check_path(body.out, "out")
    paths = write_task_csv(task, out)
    files: dict[str, dict[str, str]] = {}
    for p in paths:
        files.setdefault(p.parent.name, {})[p.stem] = str(p)
    return Reply(
        {"dir": str(out), "files": files, "labels": next(iter(next(iter(task.values())).values())).label_names}
    )
