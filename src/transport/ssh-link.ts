// One SSH connection that reopens itself: opened on first use, reopened
// with backoff after a drop, watched by a keepalive, and never keeping the
// process alive while idle.
import { setTimeout as sleep } from "node:timers/promises";
import { TransportError } from "../base/errors.js";
import { openConnection, type ConnectSettings, type Connection } from "./ssh-connect.js";
import type { SshOptions } from "./ssh-options.js";

/** The connection an SshTransport uses. */
export class SshLink {
  #current: Promise<Connection> | undefined;
  /** The open connection, for the keepalive. */
  #live: Connection | undefined;
  #everConnected = false;
  /** Aborted by close(): stops reconnecting and drops connections that open late. */
  #lifetime = new AbortController();
  #busy = 0;
  #keepalive: NodeJS.Timeout | undefined;

  constructor(
    private readonly destination: string,
    private readonly options: ConnectSettings & Required<Pick<SshOptions, "reconnectMs" | "log">>,
  ) {}

  /** Closes the connection and stops any reconnect in progress; a later use opens a new connection. */
  close(): void {
    this.#lifetime.abort();
    this.#lifetime = new AbortController();
    const current = this.#current;
    this.#current = undefined;
    this.#live = undefined;
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    void current?.then(
      (c) => this.#drop(c),
      () => undefined,
    );
  }

  /** Runs `work` on an open connection, keeping the process alive meanwhile. */
  async use<T>(work: (c: Connection) => Promise<T>): Promise<T> {
    this.#busy++;
    let c: Connection | undefined;
    try {
      c = await this.#connection();
      c.socket.ref();
      return await work(c);
    } finally {
      this.#busy--;
      if (this.#busy === 0) this.#live?.socket.unref();
    }
  }

  #connection(): Promise<Connection> {
    const current = this.#current;
    if (!current) {
      const opening = this.#establish(this.#lifetime.signal);
      this.#current = opening;
      opening.catch(() => {
        if (this.#current === opening) this.#current = undefined;
      });
      return opening;
    }
    return current.then((c) => {
      if (!c.closed) return c;
      if (this.#current === current) this.#current = undefined;
      return this.#connection();
    });
  }

  /** The first connection fails at once; after a drop, reconnects with backoff (0.5 s doubling to 30 s) for up to `reconnectMs`. */
  async #establish(lifetime: AbortSignal): Promise<Connection> {
    const closed = () => new TransportError("connect", this.destination, "the transport was closed");
    const open = async () => {
      const c = await openConnection(this.options, (lost, why) => this.#lost(lost, why));
      this.#everConnected = true;
      if (this.#busy === 0) c.socket.unref();
      if (lifetime.aborted) {
        this.#drop(c);
        throw closed();
      }
      this.#live = c;
      this.#startKeepalive();
      return c;
    };
    if (!this.#everConnected) return open();
    const started = Date.now();
    let delay = 500;
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await open();
        this.options.log(`ssh ${this.destination}: reconnected after ${((Date.now() - started) / 1000).toFixed(1)} s (attempt ${attempt})`);
        return c;
      } catch (error) {
        const e = error as TransportError;
        if (lifetime.aborted) throw closed();
        if (e.stage !== "connect") {
          this.options.log(`ssh ${this.destination}: reconnect refused: ${e.shortMessage}`);
          throw e;
        }
        if (Date.now() - started + delay > this.options.reconnectMs) throw e;
        this.options.log(`ssh ${this.destination}: reconnect attempt ${attempt} failed (${e.shortMessage.replace(/^ssh \S+ \(connect\): /, "")}); next in ${(delay / 1000).toFixed(1)} s`);
        await sleep(delay, undefined, { signal: lifetime }).catch(() => undefined);
        if (lifetime.aborted) throw closed();
        delay = Math.min(30_000, delay * 2);
      }
    }
  }

  /** The connection or its sftp channel closed: the next operation reconnects. */
  #lost(c: Connection, why: string): void {
    const expected = c.closed;
    c.closed = true;
    if (this.#live === c) this.#live = undefined;
    if (!expected) {
      c.client.end();
      this.options.log(`ssh ${this.destination}: ${why}; the next operation reconnects`);
    }
  }

  #drop(c: Connection): void {
    c.closed = true;
    c.client.end();
    c.socket.unref();
  }

  /**
   * While the connection lives: when the server has been quiet for
   * `keepaliveMs`, ask it something cheap; when it stays quiet for three
   * times that, drop the connection so the next operation reconnects.
   */
  #startKeepalive(): void {
    clearInterval(this.#keepalive);
    const every = this.options.keepaliveMs;
    this.#keepalive = setInterval(
      () => {
        const c = this.#live;
        if (!c || c.closed) return;
        const quiet = Date.now() - c.lastData;
        if (quiet >= 3 * every) {
          c.closed = true;
          this.#live = undefined;
          this.options.log(`ssh ${this.destination}: no answer for ${Math.round(quiet / 1000)} s; dropping the connection`);
          c.client.destroy();
        } else if (quiet >= every) {
          c.sftp.stat("/", () => undefined);
        }
      },
      Math.max(100, Math.floor(every / 3)),
    );
    this.#keepalive.unref();
  }
}
