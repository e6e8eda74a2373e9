/** The page's state, as shown; `globalThis.dsfgPage` exposes it to the browser tests. */
export interface PageState {
  phase: 'idle' | 'joining' | 'trie' | 'items' | 'synced' | 'error'
  /** Our head when the store was opened: -1 for a new tab, the stored head after a reload. */
  resumedFrom: number
  head: number
  target: number
  trieNodes: number
  /** Trie nodes stored with their whole subtries (a reload keeps them). */
  trieStored: number
  root?: string
  checkpoint?: { number: number; root: string }
  trust?: string
  catchUpMs?: number
  itemsPerSecond?: number
  /** Items applied after the catch-up. */
  live: number
  error?: string
  proof?: { n: number; ok: boolean; message: string }
}
