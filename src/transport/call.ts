import type { CtsftError } from "../errors.ts";
import type { Message } from "./frames.ts";

/** One in-flight request: a queue of its messages (events, then a result or an error).
 * The connection's receive loop waits on `drained()` when a slow consumer lets the queue
 * grow past the high-water mark, so back-pressure reaches the runtime instead of memory. */
export class Call {
  private queue: Message[] = [];
  private failure: CtsftError | undefined;
  private waiter: (() => void) | undefined;
  private drainWaiter: (() => void) | undefined;
  /** Next expected `seq`; a gap means lost messages and fails the call. */
  expectedSeq = 0;
  done = false;

  constructor(
    readonly id: string,
    readonly op: string,
    private readonly highWater: number,
  ) {}

  push(msg: Message): void {
    this.queue.push(msg);
    this.wake();
  }

  fail(err: CtsftError): void {
    if (this.failure === undefined) this.failure = err;
    this.done = true;
    this.wake();
    this.drainWaiter?.();
  }

  get congested(): boolean {
    return this.queue.length >= this.highWater;
  }

  /** Resolves once the consumer has taken the queue below half the high-water mark. */
  drained(): Promise<void> {
    if (!this.congested || this.done) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiter = resolve));
  }

  /** Next message, or throws the call's failure once the queue is empty. */
  async next(): Promise<Message> {
    for (;;) {
      const msg = this.queue.shift();
      if (msg !== undefined) {
        if (this.drainWaiter !== undefined && this.queue.length <= this.highWater / 2) {
          const w = this.drainWaiter;
          this.drainWaiter = undefined;
          w();
        }
        return msg;
      }
      if (this.failure !== undefined) throw this.failure;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
