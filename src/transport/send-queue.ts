import type { Writable } from "zeromq";

/** zeromq.js allows one `send` in flight per socket (EBUSY otherwise): chain them. */
export class SendQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly socket: Writable) {}

  send(frames: Buffer[]): Promise<void> {
    const next = this.tail.then(() => this.socket.send(frames));
    this.tail = next.catch(() => undefined);
    return next;
  }
}
