import { z } from "zod";
import { BadRequestError, NotFoundError } from "../errors.ts";
import { type JobInfo, JobsListResult, OPS, type OpEvent, type OpName, type OpResult } from "../schema/ops.ts";
import type { Connection } from "../transport/index.ts";
import { parse, RunStream } from "./stream.ts";

/** Options of {@link Jobs.attach}. */
export interface AttachOptions<O extends OpName> {
  /** The op the job runs; when given it is checked, and it types the stream. */
  op?: O;
  /** First message to receive (default 0: everything still buffered). */
  fromSeq?: number;
  /** Cancels the job when aborted (as for any stream). */
  signal?: AbortSignal;
}

/**
 * This client's jobs. Every request is a job in the runtime: it keeps running when the
 * connection that started it drops (a flaky network, a restarted client), and a new
 * connection with the same key can list it and re-attach to its stream. The runtime keeps a
 * bounded buffer of each job's messages (`ctsft serve --job-buffer`) and a finished job's
 * result until it is delivered or the client has been idle for `--ttl` (at most the newest
 * 64 undelivered results per client).
 */
export class Jobs {
  constructor(private readonly conn: () => Connection) {}

  /** The caller's jobs (other clients' jobs are never listed). Answered during compute. */
  async list(): Promise<JobInfo[]> {
    return parse(JobsListResult, await this.conn().controlRequest("req", "jobs.list", {}), "jobs.list").jobs;
  }

  /** Receive job `id`'s stream from `fromSeq` on: its remaining events, then its result. */
  async attach<O extends OpName = OpName>(id: string, options: AttachOptions<O> = {}): Promise<RunStream<OpEvent<O>, OpResult<O>>> {
    const fromSeq = options.fromSeq ?? 0;
    if (!Number.isInteger(fromSeq) || fromSeq < 0) throw new BadRequestError(`fromSeq must be a non-negative integer, got ${fromSeq}`, { path: "fromSeq" });
    const job = (await this.list()).find((j) => j.id === id);
    if (job === undefined) throw new NotFoundError(`this client has no job ${JSON.stringify(id)}`, { path: "id" });
    if (options.op !== undefined && job.op !== options.op) {
      throw new BadRequestError(`job ${id} runs ${job.op}, not ${options.op}`, { path: "op" });
    }
    const entry = OPS[job.op as O] as { event?: z.ZodType; result: z.ZodType };
    const schemas = { event: (entry.event ?? z.never()) as z.ZodType<OpEvent<O>>, result: entry.result as z.ZodType<OpResult<O>> };
    return new RunStream(this.conn(), this.conn().attach(id, job.op, fromSeq), schemas, options.signal);
  }
}
