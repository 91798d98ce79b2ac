"""Sweeps on a Ray cluster: `python -m ctsft_runtime.sweep` is the Ray driver the SDK starts for
`executor: { kind: "ray" }`.

The driver connects to an existing cluster (`ray.init(address=...)`) and starts one Ray actor
per concurrent worker with the resources asked for (`num_cpus`, `num_gpus`, `memory`, custom
resources); Ray places each actor and gives it its share (CUDA_VISIBLE_DEVICES for GPUs,
OMP_NUM_THREADS for CPUs). Each actor serves an ordinary ctsft runtime over tcp with CURVE
keys made for this sweep, and the SDK runs the grid's cells on those runtimes with the same
per-cell code as the serial executor. Only this package imports Ray; the default path never
does (Ray is the optional extra `ctsft setup --with ray`).
"""
