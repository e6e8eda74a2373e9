/**
 * One libp2p stream pushing bytes between two processes on loopback: the baseline the loopback syncs are
 * compared with, and the transfer of the naive sync. The sender is this file run as a child process (the
 * same TCP, noise and yamux stack as `dsfg`), the receiver is the calling process, so each end has its own
 * event loop, as a `dsfg serve` and a `dsfg sync` do.
 *
 * As a child: `stream-peer.ts --raw BYTES` pushes BYTES filler bytes; `--pairs SEED KEYS` pushes the
 * `accountEntries(SEED, KEYS)` pairs framed as key (32 bytes), value length (1 byte), value. It prints
 * `{"addr","bytes"}` once the payload is ready and pushes it to every stream opened on PUSH_PROTOCOL.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { accountEntries } from '../src/fixtures/generate.js'
import { createDsfgNode } from '../src/node/create-node.js'
import { readyLine, spawnBenchScript, stopChild } from './processes.js'

const PUSH_PROTOCOL = '/dsfg-bench/push/1.0.0'
/** Bytes per `stream.send`: large enough that per-call costs vanish, as a bulk sender would write. */
const CHUNK_BYTES = 64 * 1024
const KEY_BYTES = 32

/** What the child pushes. */
export type PushPayload = { kind: 'raw'; bytes: number } | { kind: 'pairs'; seed: number; keys: number }

export interface Pulled {
  /** The received bytes, when asked to keep them. */
  data: Uint8Array | null
  bytes: number
  /** From opening the stream (on an established connection) to the last byte received. */
  seconds: number
}

/** Frames `entries` for the naive sync: key, one length byte, value. */
export function encodePairs(entries: [Uint8Array, Uint8Array][]): Uint8Array {
  let total = 0
  for (const [key, value] of entries) {
    if (key.length !== KEY_BYTES || value.length > 255) throw new Error('pairs framing takes 32-byte keys and values up to 255 bytes')
    total += KEY_BYTES + 1 + value.length
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const [key, value] of entries) {
    out.set(key, at)
    out[at + KEY_BYTES] = value.length
    out.set(value, at + KEY_BYTES + 1)
    at += KEY_BYTES + 1 + value.length
  }
  return out
}

/** The pairs `encodePairs` framed (views into `data`). */
export function decodePairs(data: Uint8Array): [Uint8Array, Uint8Array][] {
  const pairs: [Uint8Array, Uint8Array][] = []
  for (let at = 0; at < data.length; ) {
    const length = data[at + KEY_BYTES]!
    const valueAt = at + KEY_BYTES + 1
    pairs.push([data.subarray(at, at + KEY_BYTES), data.subarray(valueAt, valueAt + length)])
    at = valueAt + length
  }
  return pairs
}

/** Starts a child pushing `payload` and receives it once over a fresh stream. */
export async function pullFromChild(payload: PushPayload, options: { keep: boolean }): Promise<Pulled> {
  const args = payload.kind === 'raw' ? ['--raw', String(payload.bytes)] : ['--pairs', String(payload.seed), String(payload.keys)]
  const child = spawnBenchScript('stream-peer.ts', args)
  try {
    const ready = await readyLine<{ addr: string; bytes: number }>(child, 'stream peer')
    const node = await createDsfgNode()
    try {
      const addr = multiaddr(ready.addr)
      // Connect first: the TCP and noise handshakes are not part of the stream's throughput.
      await node.dial(addr)
      const data = options.keep ? new Uint8Array(ready.bytes) : null
      let received = 0
      const started = performance.now()
      const stream = await node.dialProtocol(addr, PUSH_PROTOCOL)
      for await (const chunk of stream) {
        const part = chunk instanceof Uint8Array ? chunk : chunk.subarray()
        data?.set(part, received)
        received += part.byteLength
        if (received >= ready.bytes) break
      }
      const seconds = (performance.now() - started) / 1000
      if (received !== ready.bytes) throw new Error(`stream ended after ${received} of ${ready.bytes} bytes`)
      return { data, bytes: received, seconds }
    } finally {
      await node.stop()
    }
  } finally {
    await stopChild(child)
  }
}

/** MB/s (1e6 bytes) of one stream pushing `totalBytes` between two processes. */
export async function rawStreamMBps(totalBytes: number): Promise<number> {
  const { bytes, seconds } = await pullFromChild({ kind: 'raw', bytes: totalBytes }, { keep: false })
  return bytes / 1e6 / seconds
}

/** The child side: prepare the payload, listen, push it to each stream, until SIGINT. */
async function serve(payload: PushPayload): Promise<void> {
  // Raw pushes repeat one filler chunk: no need to hold hundreds of MB for bytes nobody reads.
  const filler = new Uint8Array(CHUNK_BYTES).fill(1)
  const data = payload.kind === 'pairs' ? encodePairs(accountEntries(payload.seed, payload.keys)) : null
  const total = payload.kind === 'pairs' ? data!.length : payload.bytes
  const node = await createDsfgNode()
  await node.handle(PUSH_PROTOCOL, async (stream) => {
    for (let sent = 0; sent < total; sent += CHUNK_BYTES) {
      const end = Math.min(total, sent + CHUNK_BYTES)
      const chunk = data === null ? filler.subarray(0, end - sent) : data.subarray(sent, end)
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  })
  process.once('SIGINT', async () => {
    await node.stop()
    process.exit(0)
  })
  process.stdout.write(`${JSON.stringify({ addr: node.getMultiaddrs()[0]!.toString(), bytes: total })}\n`)
}

if (import.meta.main) {
  const [mode, a, b] = process.argv.slice(2)
  if (mode === '--raw') await serve({ kind: 'raw', bytes: Number(a) })
  else if (mode === '--pairs') await serve({ kind: 'pairs', seed: Number(a), keys: Number(b) })
  else throw new Error('usage: stream-peer.ts --raw BYTES | --pairs SEED KEYS')
}
