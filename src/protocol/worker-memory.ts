// What a worker element holds besides its tasks, shared by the plan (which asks
// Slurm for it) and the runner (which keeps within it).

/**
 * Memory (MiB) a worker element asks for on top of `slots` × one task's
 * `mem`: the batch shell (about 4 MiB) and the worker's own Node.js process
 * (47 MiB resident at its start, 57 MiB after claiming 3,000 tasks, kept flat
 * by WORKER_NODE_FLAGS), with room for other Node.js versions.
 * Measured on Node 20 (README, "Memory in a worker"). Each slot's process is
 * the task's own, as the runner is in an element of its own.
 */
export const WORKER_OVERHEAD_MB = 96;

/**
 * Memory (MiB) a worker asks for per slot on top of one task's `mem`: what a
 * slot process may have grown by since it started (freed heap that V8
 * keeps, its young generation, code paged in) before it is replaced. A task
 * is not charged with it, so it gets its whole `mem` after other tasks ran
 * in its slot. Trivial tasks grow a slot by about 16 MiB in their first 500
 * (Node 20), so 16 replaced a slot every 500 tasks; 32 does every 2,700.
 */
export const SLOT_MARGIN_MB = 32;

/**
 * Node.js flags of the worker's own process, never of its slots: a young
 * generation of 1 MiB, so that claiming many tasks does not grow it.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
