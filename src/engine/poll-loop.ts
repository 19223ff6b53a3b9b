/** Polling intervals of the watcher. */
export interface WatcherIntervals {
  /** The floor: no two polls closer than this. @default 1000 */
  readonly minMs: number;
  /** The ceiling the interval backs off to while nothing changes. @default 15000 */
  readonly maxMs: number;
  /**
   * How long a job that Slurm says COMPLETED may go without a visible result
   * file before it fails: shared file systems (NFS) can show a new file late.
   * @default 60000
   */
  readonly resultGraceMs: number;
}

/** The floor below which the interval cannot be set. */
export const MIN_POLL_INTERVAL_MS = 200;

/**
 * When the watcher polls: at the floor after a change, backing off by 1.5×
 * up to the ceiling while nothing changes, one poll at a time. A timer keeps
 * the process alive only while someone waits.
 */
export class PollLoop {
  #intervals: WatcherIntervals = { minMs: 1000, maxMs: 15_000, resultGraceMs: 60_000 };
  #intervalMs = 1000;
  #waiters = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = 0;
  #polling: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #lastPollAt = 0;

  /** `poll` resolves true when something changed (undefined when it had nothing to poll); `hasWork` says whether there is anything to poll for. */
  constructor(
    private readonly poll: () => Promise<boolean | undefined>,
    private readonly hasWork: () => boolean,
  ) {}

  get intervalMs(): number {
    return this.#intervalMs;
  }

  get intervals(): WatcherIntervals {
    return this.#intervals;
  }

  setIntervals(intervals: Partial<WatcherIntervals>): void {
    const minMs = Math.max(MIN_POLL_INTERVAL_MS, intervals.minMs ?? this.#intervals.minMs);
    const maxMs = Math.max(minMs, intervals.maxMs ?? this.#intervals.maxMs);
    const resultGraceMs = Math.max(0, intervals.resultGraceMs ?? this.#intervals.resultGraceMs);
    this.#intervals = { minMs, maxMs, resultGraceMs };
    this.#intervalMs = minMs;
  }

  /** Someone waits: poll soon (never before the floor), and keep the process alive until the wait ends. */
  acquire(): void {
    this.#waiters++;
    this.#timer?.ref();
    this.schedule(0);
  }

  release(): void {
    this.#waiters = Math.max(0, this.#waiters - 1);
    if (this.#waiters === 0) this.#timer?.unref();
  }

  /** Polls now, ignoring the floor: a poll that starts after this call. */
  pollNow(): Promise<void> {
    if (!this.#polling) return this.#start();
    this.#next ??= this.#polling.then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  /** Schedules a poll `delayMs` from now (the current interval by default), but never sooner than the floor after the last poll. */
  schedule(delayMs = this.#intervalMs): void {
    if (!this.hasWork() || this.#polling) return;
    const due = Math.max(Date.now() + delayMs, this.#lastPollAt + this.#intervals.minMs);
    if (this.#timer && this.#timerDue <= due) return;
    clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.pollNow();
    }, due - Date.now());
    if (this.#waiters === 0) this.#timer.unref();
  }

  #start(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lastPollAt = Date.now();
    this.#polling = this.poll()
      .then((changed) => {
        if (changed === undefined) return;
        this.#intervalMs = changed ? this.#intervals.minMs : Math.min(this.#intervals.maxMs, Math.round(this.#intervalMs * 1.5));
      })
      .finally(() => {
        this.#polling = undefined;
        this.schedule();
      });
    return this.#polling;
  }
}
