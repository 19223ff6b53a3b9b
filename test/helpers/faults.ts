import { randomBytes } from "node:crypto";
import type { RunOptions, RunResult, Transport } from "../../src/index.js";
import { readFrom } from "../../src/transport/transport.js";

/** Where a fault is injected: each hook gets the call and the real operation, and may fail, delay or pass it on. */
export interface FaultHooks {
  run?(program: string, args: readonly string[], real: () => Promise<RunResult>, options?: RunOptions): Promise<RunResult>;
  readFile?(path: string, real: () => Promise<Buffer>): Promise<Buffer>;
  list?(path: string, real: () => Promise<string[]>): Promise<string[]>;
}

/**
 * A real transport with faults injected at chosen calls, for the fault drills.
 * Its own key gives it its own watcher and scheduler, so other tests never
 * meet its faults.
 */
export class FaultyTransport implements Transport {
  readonly key = `faulty-${randomBytes(4).toString("hex")}`;
  constructor(
    readonly inner: Transport,
    public hooks: FaultHooks = {},
  ) {}
  run(program: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    const real = () => this.inner.run(program, args, options);
    return this.hooks.run ? this.hooks.run(program, args, real, options) : real();
  }
  readFile(path: string): Promise<Buffer> {
    const real = () => this.inner.readFile(path);
    return this.hooks.readFile ? this.hooks.readFile(path, real) : real();
  }
  readFrom(path: string, offset: number): Promise<Buffer> {
    return readFrom(this.inner, path, offset);
  }
  list(path: string): Promise<string[]> {
    const real = () => this.inner.list(path);
    return this.hooks.list ? this.hooks.list(path, real) : real();
  }
  writeFile(path: string, data: Uint8Array | string): Promise<void> {
    return this.inner.writeFile(path, data);
  }
  createExclusive(path: string, data: Uint8Array | string): Promise<boolean> {
    return this.inner.createExclusive(path, data);
  }
  mkdir(path: string): Promise<void> {
    return this.inner.mkdir(path);
  }
  close(): void {
    this.inner.close?.();
  }
}
