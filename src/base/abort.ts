// Many waits on one AbortSignal: Node's EventTarget checks every listener
// already added for a duplicate, so n waits that each add their own cost
// O(n²) (37.7 s for 100,000 here). One listener per signal serves them all.

const waiting = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` once when `signal` aborts. Returns a function that stops
 * it; call it when the wait ends. However many callbacks a signal has, it
 * holds one listener of its own.
 */
export function whenAborted(signal: AbortSignal, callback: () => void): () => void {
  let callbacks = waiting.get(signal);
  if (callbacks === undefined) {
    const set = new Set<() => void>();
    callbacks = set;
    waiting.set(signal, set);
    signal.addEventListener(
      "abort",
      () => {
        waiting.delete(signal);
        for (const f of [...set]) f();
        set.clear();
      },
      { once: true },
    );
  }
  const set = callbacks;
  set.add(callback);
  return () => void set.delete(callback);
}
