/**
 * The page `dsfg serve --web` serves: a tab joins a topic from a server's WebSockets multiaddr, checkpoint-syncs
 * it into IndexedDB (so a reload resumes), then shows live items and checks proofs of stored items against the
 * publisher-signed checkpoint root. It uses the package's browser entries, as an application's bundle would.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { BrowserLevelStore, type TopicHandle, type TopicSyncProgress, toHex, uint64BE, verifyProof } from '../src/browser.js'
import { createDsfgNode } from '../src/browser-node.js'
import type { PageState } from './page-state.js'

/** What `dsfg serve --web` tells the page at `/config.json`. */
interface PageConfig {
  addrs: string[]
  topics: { name: string; publisher?: string }[]
}

/** What the tab joined; kept in localStorage so that a reload joins again and resumes from IndexedDB. */
interface Session {
  addr: string
  topic: string
  publisher: string
}

const SESSION_KEY = 'dsfg-page-session'
/** Items shown in the list: the newest ones. */
const SHOWN_ITEMS = 20

const state: PageState = { phase: 'idle', resumedFrom: -1, head: -1, target: -1, trieNodes: 0, trieStored: 0, live: 0 }
;(globalThis as { dsfgPage?: PageState }).dsfgPage = state

const element = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T
const input = (id: string): HTMLInputElement => element<HTMLInputElement>(id)

let topic: TopicHandle | undefined

function render(): void {
  const progress = element<HTMLProgressElement>('progress')
  const phaseText = {
    idle: 'not joined',
    joining: 'opening the store and dialling the server…',
    trie: `trie phase: checkpoint ${state.target}'s topic trie, ${state.trieNodes} nodes verified and stored`,
    items: `items phase: ${state.head + 1} of ${state.target + 1} items stored`,
    synced: `synced: ${state.head + 1} items, following live items`,
    error: `error: ${state.error ?? ''}`
  }[state.phase]
  element('phase').textContent = phaseText
  if (state.phase === 'trie' || state.phase === 'joining') progress.removeAttribute('value') // no honest total yet
  else progress.value = state.target < 0 ? 0 : Math.min(1, (state.head + 1) / (state.target + 1))
  if (state.phase === 'synced') progress.value = 1
  element('head').textContent = String(state.head)
  element('resumed').textContent = state.resumedFrom < 0 ? 'an empty store' : `item ${state.resumedFrom} (kept in IndexedDB)`
  element('checkpoint').textContent = state.checkpoint === undefined ? '–' : `#${state.checkpoint.number} ${state.checkpoint.root}`
  element('root').textContent = state.root ?? '–'
  element('trust').textContent = state.trust ?? '–'
  element('rate').textContent =
    state.catchUpMs === undefined ? '–' : `${(state.catchUpMs / 1000).toFixed(1)} s, ${Math.round(state.itemsPerSecond ?? 0)} items/s`
  const result = element('proof-result')
  result.textContent = state.proof?.message ?? ''
  result.className = state.proof === undefined ? '' : state.proof.ok ? 'ok' : 'bad'
}

function storeName(session: Session): string {
  return `dsfg:${session.topic}:${session.publisher === '' ? 'quorum' : session.publisher}`
}

function preview(data: Uint8Array): string {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data.subarray(0, 48))
  // Printable text as is, anything else as hex.
  return /^[\x20-\x7e]*$/.test(text) ? JSON.stringify(text) : toHex(data.subarray(0, 24)) + (data.length > 24 ? '…' : '')
}

function showItem(n: number, data: Uint8Array): void {
  const list = element('items')
  const row = document.createElement('li')
  row.value = n
  row.textContent = `${preview(data)} (${data.length} B)`
  list.prepend(row)
  while (list.children.length > SHOWN_ITEMS) list.lastElementChild!.remove()
}

async function showItems(handle: TopicHandle, from: number, signal: AbortSignal): Promise<void> {
  for await (const item of handle.items({ from, signal })) {
    if (item.n > state.head) {
      state.head = item.n
      state.live++
    }
    showItem(item.n, item.data)
    render()
  }
}

async function join(session: Session): Promise<void> {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session))
  state.phase = 'joining'
  render()
  const store = await BrowserLevelStore.open(storeName(session))
  const node = await createDsfgNode({ store })
  const stop = new AbortController()
  addEventListener('pagehide', () => {
    stop.abort()
    void Promise.resolve(node.stop()).then(() => store.close())
  })
  const handle = node.services.dsfg.topic(
    session.publisher === '' ? session.topic : { name: session.topic, publisher: peerIdFromString(session.publisher) }
  )
  topic = handle
  state.resumedFrom = await handle.head()
  state.head = state.resumedFrom
  handle.addEventListener('sync:progress', (e: CustomEvent<TopicSyncProgress>) => {
    const { phase, head, target, trie } = e.detail
    if (state.phase === 'synced') return
    state.phase = phase
    state.head = head
    state.target = trie?.checkpoint.number ?? target
    state.trieNodes = trie?.nodes ?? state.trieNodes
    state.trieStored = trie?.stored ?? state.trieStored
    render()
  })
  handle.addEventListener('checkpoint', (e) => {
    const { checkpoint } = e.detail
    state.checkpoint = { number: checkpoint.number, root: toHex(checkpoint.root) }
    render()
  })
  let started = 0
  handle.addEventListener('sync:complete', (e) => {
    if (state.phase === 'synced') return
    const { head, trust } = e.detail
    state.catchUpMs = performance.now() - started
    state.itemsPerSecond = (head - state.resumedFrom) / (state.catchUpMs / 1000)
    state.head = head
    state.target = Math.max(state.target, head)
    state.trust = trust
    void handle.root().then((root) => {
      state.root = toHex(root)
      state.phase = 'synced'
      render()
      void showItems(handle, Math.max(0, head - SHOWN_ITEMS + 1), stop.signal).catch(() => undefined)
    })
  })
  render()
  started = performance.now()
  await node.dial(multiaddr(session.addr), { signal: AbortSignal.timeout(15_000) })
  await handle.follow({ signal: stop.signal })
}

async function checkProof(n: number): Promise<void> {
  if (topic === undefined) throw new Error('join a topic first')
  const signed = topic.checkpointReceived
  // Without a publisher there is no signed root: the proof is checked against our own current root.
  const root = signed?.root ?? (await topic.root())
  const against = signed === undefined ? `our root ${toHex(root)} (no publisher-signed checkpoint)` : `checkpoint #${signed.number}'s signed root ${toHex(root)}`
  if (signed !== undefined && n > signed.number) throw new Error(`item ${n} is past the newest signed checkpoint #${signed.number}`)
  const proof = await topic.prove(n, root)
  const value = verifyProof(root, uint64BE(n), proof)
  if (value === null) throw new Error(`item ${n} is proven absent from ${against}`)
  const bytes = proof.reduce((sum, node) => sum + node.length, 0)
  state.proof = { n, ok: true, message: `item ${n} is proven against ${against}: ${proof.length} nodes, ${bytes} B; the item: ${preview(value)}` }
}

function fail(err: unknown): void {
  state.phase = 'error'
  state.error = err instanceof Error ? err.message : String(err)
  render()
}

async function main(): Promise<void> {
  element('join').addEventListener('submit', (e) => {
    e.preventDefault()
    element<HTMLButtonElement>('join-button').disabled = true
    join({ addr: input('addr').value.trim(), topic: input('topic').value.trim(), publisher: input('publisher').value.trim() }).catch(fail)
  })
  element('prove').addEventListener('submit', (e) => {
    e.preventDefault()
    const n = Number(input('prove-n').value)
    checkProof(n)
      .catch((err: unknown) => {
        state.proof = { n, ok: false, message: err instanceof Error ? err.message : String(err) }
      })
      .finally(render)
  })
  element('reset').addEventListener('click', () => {
    const saved = localStorage.getItem(SESSION_KEY)
    localStorage.removeItem(SESSION_KEY)
    const done = saved === null ? Promise.resolve() : BrowserLevelStore.destroy(storeName(JSON.parse(saved) as Session))
    // The store is open while the node runs: reload first, the deletion completes once nothing holds it.
    void done.finally(() => location.reload())
  })
  const saved = localStorage.getItem(SESSION_KEY)
  if (saved !== null) {
    const session = JSON.parse(saved) as Session
    input('addr').value = session.addr
    input('topic').value = session.topic
    input('publisher').value = session.publisher
    element<HTMLButtonElement>('join-button').disabled = true
    await join(session)
    return
  }
  const config = (await (await fetch('config.json')).json()) as PageConfig
  input('addr').value = config.addrs[0] ?? ''
  input('topic').value = config.topics[0]?.name ?? ''
  input('publisher').value = config.topics[0]?.publisher ?? ''
  render()
}

main().catch(fail)
