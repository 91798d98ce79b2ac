import { z } from "zod";

/** What each Ray worker asks the cluster for; Ray places the worker where that fits and gives
 * it exactly its share. */
export const RayResources = z
  .object({
    /**
     * CPUs per worker (Ray's `num_cpus`; Ray also sets the worker's `OMP_NUM_THREADS` to it, so torch uses that many threads).
     * @defaultValue `1`
     */
    numCpus: z.number().positive().default(1),
    /**
     * GPUs per worker (Ray's `num_gpus`; fractions share a GPU). The worker sees only its GPUs (`CUDA_VISIBLE_DEVICES`).
     * @defaultValue `0`
     */
    numGpus: z.number().nonnegative().default(0),
    /** Bytes of memory to reserve per worker (Ray's `memory`; a scheduling reservation, not a limit). */
    memory: z.number().int().positive().optional(),
    /**
     * Custom resources per worker (Ray's `resources`, e.g. `{ "accelerator_type:A100": 0.001 }`).
     * @defaultValue `{}`
     */
    custom: z.record(z.string().min(1), z.number().positive()).default({}),
  })
  .strict();

/** Every cell on the one runtime the caller has, one after another (the default). */
export const SerialExecutor = z.object({ kind: z.literal("serial") }).strict();

/** The grid's cells on an existing Ray cluster: one Ray actor per worker, each serving its own
 * runtime, with the resources asked for (docs/guide.md, "Sweeps on a Ray cluster"). */
export const RayExecutor = z
  .object({
    kind: z.literal("ray"),
    /**
     * The cluster, as `ray.init(address=…)` takes it: `HOST:PORT` of the head's GCS, or `auto` (`RAY_ADDRESS`, else the cluster started on this machine).
     * @defaultValue `"auto"`
     */
    address: z.string().min(1).default("auto"),
    /**
     * Per worker.
     * @defaultValue `{ numCpus: 1, numGpus: 0, custom: {} }`
     */
    resources: RayResources.default({ numCpus: 1, numGpus: 0, custom: {} }),
    /** How many workers run cells at once (default: as many as the cluster has room for, at most one per cell). */
    workers: z.number().int().positive().optional(),
    /** The workers accept only paths inside this directory, which every node must see at the same path (default: the working directory; in a config, relative to the config file). */
    root: z.string().min(1).optional(),
    /**
     * Seconds to wait for the workers to be scheduled and start; the sweep runs on those that did.
     * @defaultValue `300`
     */
    startTimeoutS: z.number().positive().default(300),
  })
  .strict();

/** Where a grid's cells run. */
export const Executor = z.discriminatedUnion("kind", [SerialExecutor, RayExecutor]);
export type Executor = z.output<typeof Executor>;
export type ExecutorInput = z.input<typeof Executor>;
export type RayExecutor = z.output<typeof RayExecutor>;
