// Many waits on one AbortSignal: Node's EventTarget checks every listener
// already added for a duplicate, so n waits that each add their own cost
// O(n²) (37.7 s for 100,000 here). One listener per signal serves them all,
// and goes once no wait is left on it (a signal with a listener is kept).

const waiting = new WeakMap<AbortSignal, { callbacks: Set<() => void>; onAbort: () => void }>();

/**
 * Calls `callback` once when `signal` aborts (in a microtask if it has
 * already). Returns a function that stops it; call it when the wait ends.
 * However many callbacks a signal has, it holds one listener of its own.
 */
export function whenAborted(signal: AbortSignal, callback: () => void): () => void {
  if (signal.aborted) {
    queueMicrotask(callback);
    return () => undefined;
  }
  let entry = waiting.get(signal);
  if (entry === undefined) {
    const callbacks = new Set<() => void>();
    const onAbort = () => {
      waiting.delete(signal);
      for (const f of [...callbacks]) f();
      callbacks.clear();
    };
    entry = { callbacks, onAbort };
    waiting.set(signal, entry);
    signal.addEventListener("abort", onAbort, { once: true });
  }
  const { callbacks, onAbort } = entry;
  callbacks.add(callback);
  return () => {
    if (!callbacks.delete(callback) || callbacks.size > 0 || waiting.get(signal) !== entry) return;
    waiting.delete(signal);
    signal.removeEventListener("abort", onAbort);
  };
}
