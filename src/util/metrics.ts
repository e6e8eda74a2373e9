/**
 * The counters the cores increment, shaped so that libp2p's `Counter` and `CounterGroup` fit them: the service
 * registers them with `components.metrics` and hands them down, and the cores import nothing from libp2p.
 * Without a metrics implementation a core holds none, and each count is one optional call that does nothing.
 * Counts are made per reply or batch, never per node or item.
 */
export interface Count {
  increment(value?: number): void
}

/** Counters keyed by one label's value; libp2p's `CounterGroup` fits it. */
export interface CountGroup<K extends string = string> {
  increment(values: Partial<Record<K, number | true>>): void
}

/** What a sync verified: how many (nodes or items) and their bytes. */
export interface VerifiedCounts {
  count: Count
  bytes: Count
}
