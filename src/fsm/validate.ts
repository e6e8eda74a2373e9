import type { Item } from './types.js'

/** How a reply fails to answer `[from, from + amount)`. */
export type ItemsFault = 'malformed' | 'too-many' | 'out-of-range' | 'not-ascending' | 'duplicate' | 'gap' | 'empty'

export type ItemsCheck =
  /** `complete` is false for a short reply: a contiguous prefix starting at `from`. */
  | { ok: true; complete: boolean }
  | { ok: false; fault: ItemsFault; message: string }

/**
 * Checks a reply to "up to `amount` items from `from`" against the dense-numbering contract: at most `amount`
 * items, each an `{ n, data: Uint8Array }` with `from <= n < from + amount`, strictly ascending, without
 * duplicates or gaps, starting at `from`. A shorter reply that is such a prefix is valid (a server caps its
 * replies by bytes). An empty reply is a fault: the peer was asked only for a range it claimed to hold.
 * Pure, and total over untrusted input: it never throws.
 */
export function validateItems(from: number, amount: number, items: unknown): ItemsCheck {
  if (!Array.isArray(items)) return invalid('malformed', 'reply is not an array')
  if (items.length === 0) return invalid('empty', `empty reply for [${from}, ${from + amount - 1}]`)
  if (items.length > amount) return invalid('too-many', `${items.length} items for a request of ${amount}`)
  const end = from + amount
  // Ordering faults are looked for over the whole reply before contiguity, so that a reversed or repeated
  // reply is reported as such and not as the gap it also makes.
  let prev = -1
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i]
    if (!isItem(item)) return invalid('malformed', `item ${i} is not { n: safe integer, data: Uint8Array }`)
    const n = item.n
    if (n < from || n >= end) return invalid('out-of-range', `item ${n} outside [${from}, ${end - 1}]`)
    if (i > 0 && n === prev) return invalid('duplicate', `item ${n} sent twice`)
    if (i > 0 && n < prev) return invalid('not-ascending', `item ${n} after ${prev}`)
    prev = n
  }
  for (let i = 0; i < items.length; i++) {
    const n = (items[i] as Item).n
    if (n !== from + i) return invalid('gap', `item ${n} where ${from + i} was expected`)
  }
  return { ok: true, complete: items.length === amount }
}

function isItem(value: unknown): value is Item {
  if (typeof value !== 'object' || value === null) return false
  const { n, data } = value as { n?: unknown; data?: unknown }
  return typeof n === 'number' && Number.isSafeInteger(n) && data instanceof Uint8Array
}

function invalid(fault: ItemsFault, message: string): ItemsCheck {
  return { ok: false, fault, message }
}
