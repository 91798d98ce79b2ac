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
    overwrite: bool = False


@op("data.load", DataLoadBody)
def load(ctx: OpContext, body: DataLoadBody) -> Reply:
    ds = resolve_data(ctx.state, body.data, "data")
    handle = ctx.state.add(ctx.state.datasets, "d", ds)
    return Reply({"handle": handle, "info": dataset_info(ds)})


@op("data.synthetic", SyntheticBody)
def synthetic(ctx: OpContext, body: SyntheticBody) -> Reply:
    from ..data import make_task, write_task_csv
    from ..models.atomic import atomic_dir

    task = make_task(body.seed, body.languages, body.n_train, body.n_valid, body.n_test)
    out = ctx.state.check_path(body.out, "out")
    # The output rule of every save (models/atomic.py): `out` is replaced whole, so it must be
    # absent, empty or a folder ctsft wrote, unless overwrite says otherwise.
    with atomic_dir(
        out, kind="synthetic task", overwrite=body.overwrite, protected=(ctx.state.path_root,), field="out"
    ) as tmp:
        paths = write_task_csv(task, tmp)
    files: dict[str, dict[str, str]] = {}
    for p in paths:
        files.setdefault(p.parent.name, {})[p.stem] = str(out / p.parent.name / p.name)
    return Reply(
        {"dir": str(out), "files": files, "labels": next(iter(next(iter(task.values())).values())).label_names}
    )
