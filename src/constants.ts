/**
 * Every tunable lives here once, with the reason for its value. `Init` objects document which constant is
 * their default.
 */

/**
 * Most nodes of one trie depth that may be handed out by `TrieSync.missing` and not yet committed.
 * Deepest-first order alone does not bound the width of the in-memory partial trie when many peers pull work
 * at once; go-ethereum hit OOM on bootnodes with 250 peers before adding this cap (PR #21491). Counted from
 * `missing` until commit, not until delivery, because a delivered node waiting on its children still holds
 * memory. reference: go-ethereum@02b73d4e trie/sync.go maxFetchesPerDepth
 */
export const MAX_FETCHES_PER_DEPTH = 16384

/**
 * Requests a trie sync may hold (scheduled and not yet committed, delivered ones waiting on their children
 * included) while it still hands out the shallowest missing nodes first; past it, the deepest first, which
 * keeps the partial trie in memory a narrow path (go-ethereum's only order). Deepest first from the start left
 * the last subtries' levels to be found one round trip after another at the end of the sync; shallowest first,
 * every level is known as the one above it completes. A held request is a few hundred bytes with its node
 * (at most 532 for a branch): 131,072 of them are about 80 MB. A 100k-key account trie (138k nodes) stays
 * under it all the way.
 */
export const BREADTH_FIRST_BELOW_REQUESTS = 131_072

/**
 * Uncommitted bytes after which a sync driver should flush the scheduler to the store. go-ethereum's
 * `ethdb.IdealBatchSize`: large enough that writes are batched, small enough that a crash loses little.
 */
export const IDEAL_BATCH_BYTES = 100 * 1024

/**
 * Most node hashes in one `/dsfg/nodes/1.0.0` request and most nodes in one reply. go-ethereum's snap healing
 * asks up to 1,024 trie nodes at once (`maxTrieRequestCount`); at ~530 bytes a branch node that is about 540 KB,
 * well inside `MAX_RESPONSE_BYTES`. Measured over links of 80 ms round trip (issue 13), the earlier 384
 * (go-ethereum's `MaxStateFetch`, sized for its many peers) left each peer idle most of the time.
 */
export const MAX_NODES_PER_REQUEST = 1024

/**
 * Reply bytes a trie sync sizes a request for once peers send subtries as their leaves (`StateSyncerInit.subtries`):
 * a task then brings a whole subtrie, so the request is sized by its tasks' bytes on average so far, not by a
 * count of nodes. A quarter of `MAX_RESPONSE_BYTES`, so a subtrie larger than the average still fits.
 */
export const SUBTRIE_REQUEST_BYTES = 512 * 1024

/**
 * The shallowest depth (in nibbles) whose nodes a trie sync lets peers send as their subtries' leaves. A server
 * reads a subtrie until it passes the reply's room before it sends the node instead, so asking that of the root's
 * (the whole trie) and of its children would cost every server a reply's worth of reads for nothing on any trie
 * but a small one. At depth 2 a subtrie holds a 256th of the trie: 390 leaves (44 KB) of a 100k-key account
 * trie, 3,900 (440 KB) of a million keys.
 */
export const SUBTRIE_MIN_DEPTH = 2

/**
 * Subtries a trie sync asks a peer for in one request before it has measured that peer on them (a task then
 * brings hundreds of nodes, not one): a crawler measured on single nodes was given dozens of subtries, 2 MB
 * for a link of 40 KB/s.
 */
export const SUBTRIE_PROBE_TASKS = 2

/**
 * Nodes replies a server builds with subtries read at once; a request past them is answered with nodes. Reading
 * a request's subtries holds up to a reply's worth of nodes and their leaves beside the reply: 50 joiners of
 * one `dsfg serve` took its RSS from 113 to 506 MB with no such bound.
 */
export const MAX_SUBTRIE_READS = 8

/**
 * Node requests a trie syncer keeps in flight to one peer, written ahead on its one stream: while one reply is on
 * the wire the next requests are already at the server. When each request was a new stream (a round trip to
 * open, then the request), two requests of a few hundred nodes left a peer's link idle most of the time on a
 * link with 80 ms of round trip (issue 13: a fifth of 8 Mbit/s); four of up to `MAX_NODES_PER_REQUEST` cover
 * that link's bandwidth-delay product. go-ethereum keeps one per peer and relies on having many peers.
 */
export const MAX_NODE_REQUESTS_PER_PEER = 4

/**
 * Nodes requests a client may write on one long-lived `/dsfg/nodes/1.0.0` stream ahead of their replies, and a
 * server reads ahead of its answers: its read buffer holds this many `MAX_NODES_REQUEST_BYTES` frames, 135 KB a
 * stream. As many as a trie syncer keeps in flight to one peer (`MAX_NODE_REQUESTS_PER_PEER`), so all of them go
 * out back to back on one stream; a syncer configured for more queues the rest unwritten.
 */
export const MAX_PIPELINED_NODES_REQUESTS = MAX_NODE_REQUESTS_PER_PEER

/** Most payload bytes in one reply frame; a server stops adding items before passing it. */
export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024

/**
 * Longest wait for one request. Also the cap on the adaptive timeout (go-ethereum's `ttlLimit` is a minute on
 * the open internet; a topic's peers answer from memory or a local store, so ten seconds is plenty).
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/**
 * The slowest average rate at which a reply must move, once `DEFAULT_REQUEST_TIMEOUT_MS` has passed, for a
 * server writing it and a client reading it to keep waiting (besides never going `DEFAULT_REQUEST_TIMEOUT_MS`
 * without a byte). A fixed deadline cut every reply longer than the link carries in ten seconds: a 2 MiB
 * contents reply needs 0.21 MB/s to itself, so at 2 Mbit/s with four replies sharing the link none ever finished
 * (issue 13, "requests sized to the link"). 32 KiB/s lets a full reply take 74 s and still cuts a peer that reads
 * (or sends) nothing at the old deadline, and one that trickles soon after.
 */
export const DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND = 32 * 1024

/**
 * The largest yamux receive window a DSFG node grants a stream: yamux's own initial window, never grown (its
 * default grows to 16 MiB). A yamux sender writes its whole window as one data frame, and a frame reaches the
 * reader only whole, so on a thin link a grown window meant seconds with no byte seen at either end (a 1 MiB
 * frame takes 17 s at a quarter of 2 Mbit/s): a reply's deadlines, which follow its progress
 * (`DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND`), would cut it. 256 KiB arrive within the 10 s a reply may go
 * without progress even at that rate. It caps one stream at 256 KiB per round trip (3.2 MB/s at 80 ms): a topic
 * sync gives a peer that delivers more several contents streams (`MAX_LANES_PER_PEER`).
 */
export const MAX_STREAM_WINDOW_BYTES = 256 * 1024

/**
 * Most long-lived contents streams a topic sync keeps to one peer (`FrameSessions.request`'s `lanes`). One
 * stream carries at most `MAX_STREAM_WINDOW_BYTES` a round trip: four peers 80 ms away carried 11 MB/s on one
 * stream each where loopback gave 20 MB/s (`bench:links --syncers topic`, 2026-12-06). A peer gets more streams
 * only as its measured rate grows (`LANE_BYTES_PER_SECOND`), so a thin link keeps one.
 */
export const MAX_LANES_PER_PEER = 4

/**
 * A peer's measured download rate a contents stream is opened for: a peer that delivered 1.5 MB/s may have two,
 * up to `MAX_LANES_PER_PEER`. Each stream then still carries 16 times the slowest rate a reply may move at
 * (`DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND`), so sharing the link never brings a reply near its deadline, while
 * a link that carries a stream's window each 80 ms round trip (3.2 MB/s) is given more.
 */
export const LANE_BYTES_PER_SECOND = 16 * DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND

/**
 * Dials of one peer before a client gives up on it. A server that a burst of joiners reaches at once refuses
 * some connections while it upgrades the others (libp2p's pending-connection and per-host limits), and a
 * server still starting refuses them all: a failed dial is worth retrying a few times, seconds apart.
 */
export const DIAL_ATTEMPTS = 4

/** The wait before the first retry of a dial; doubled (with jitter) for each retry after it. */
export const DIAL_BACKOFF_MS = 250

/** The longest wait between two dials of a peer: the doubling of `DIAL_BACKOFF_MS` stops there. */
export const DIAL_MAX_BACKOFF_MS = 4_000

/**
 * How long after its first dial a client keeps dialling a peer that is there but busy: one that took the TCP
 * connection and reset it, or let it time out, in the encryption handshake (see `dialWithRetry`). A burst of 50
 * joiners on 2 cores kept a server's handshakes failing so for most of a minute.
 */
export const DIAL_BUSY_RETRY_WINDOW_MS = 90_000

/**
 * Connection limits for a node that serves (`dsfg serve`): libp2p's defaults (5 connections a second from one
 * host, 10 connection upgrades in progress) reset most of a burst of 20 joiners (15 of 20 in issue 13's
 * test). Each upgrade in progress holds a noise handshake, a few KB, so 64 of them stay small; 64 new
 * connections a second from one host still stops one host from opening thousands. What a connected peer may
 * then ask is bounded by the per-peer request limits. Peer ids are free, so those limits alone let one machine
 * fill the reply budget with a hundred of them: one IP address holds at most 32 connections at once (16 such
 * ids left every honest joiner complete at 2.6-3.9 s against 4.0 s unattacked, 64 at up to 12.8 s, 96 shut
 * one of three out; 10 ids reading their replies at full speed kept an honest `dsfg sync --root` refused until
 * a peer's part of the reply budget shrank with the peers asking for it, see `ReplyBudget`). Clients behind
 * one NAT share the 32.
 */
/**
 * How long a socket on a WebSocket listener may take to become a WebSocket (its HTTP upgrade request): libp2p's
 * listener set none, so a socket that never finished its request stayed open for good. An honest client sends
 * that request at once; libp2p's own upgrade timeout (noise, yamux) starts after it.
 */
export const WS_UPGRADE_TIMEOUT_MS = 10_000

/**
 * How long a WebSocket a DSFG node closes may wait for its peer's close frame before its socket is destroyed.
 * The `ws` library waits 30 s: a peer that took the upgrade and then said nothing held its socket, and its
 * place under the per-address limit, for 40 s (libp2p's 10 s upgrade timeout, then the close), not 12.
 */
export const WS_CLOSE_GRACE_MS = 2_000

export const SERVER_CONNECTION_LIMITS = {
  inboundConnectionThreshold: 64,
  maxIncomingPendingConnections: 64,
  maxConnectionsPerHost: 32
} as const

/**
 * Bounds on the round-trip estimate the request size and timeout are derived from (go-ethereum `p2p/msgrate`
 * uses 2 s and 20 s for the internet). The lower bound keeps requests large on fast links: capacity is
 * "items a peer delivers in one target round trip", so a tiny loopback RTT would otherwise mean tiny requests.
 */
export const RTT_MIN_ESTIMATE_MS = 1_000
export const RTT_MAX_ESTIMATE_MS = 20_000

/** Weight of one measurement in the per-peer moving averages (msgrate `measurementImpact`). */
export const MEASUREMENT_IMPACT = 0.1

/**
 * A peer's first replies, during which its capacity follows a faster measurement at once (only a slower one
 * is averaged). From a capacity of zero, the moving average alone took requests from 1 node past 300 only
 * after 9 seconds over an 80 ms link (1, 2, 4, 7, 12, 21, 31, …; issue 13); taking each faster measurement
 * whole, a request grows about sixfold per reply, like a TCP slow start, and reaches the cap in four or
 * five replies.
 */
export const CAPACITY_WARMUP_REPLIES = 8

/** Always ask for a little more than measured so the estimate cannot lock into a low value (msgrate). */
export const CAPACITY_OVERESTIMATION = 1.01

/** Timeout = `TTL_SCALING` × round trip / confidence, capped by the request timeout (msgrate `ttlScaling`). */
export const TTL_SCALING = 3

/** Lowest confidence in the round-trip estimate; new peers lower it, time restores it (msgrate). */
export const RTT_MIN_CONFIDENCE = 0.1

/** With this many peers or more, a joining peer no longer lowers confidence (msgrate `tuningConfidenceCap`). */
export const TUNING_CONFIDENCE_CAP = 10

/** Weight of the peers' median round trip when re-tuning the global estimate (msgrate `tuningImpact`). */
export const TUNING_IMPACT = 0.25

/**
 * Offences (nodes that fail verification, nodes nobody asked for, malformed replies) after which a trie sync
 * asks a peer nothing more. One offence could be a bug on our side; three are a pattern. Whether the peer is
 * disconnected is the peer ledger's decision (`PEER_SCORE_THRESHOLD`).
 */
export const MAX_PEER_OFFENCES = 3

/**
 * How long a trie sync waits before its first probe of a peer that did not answer (a request timed out or
 * failed). Such a peer gets no work until it answers again; a probe is one node that stays queued for the
 * other peers too, so a silent peer costs the sync at most the one timeout that revealed it, however many
 * such peers there are (go-ethereum's snap sync likewise reverts a timed-out request to the idle peers at
 * once). Each probe that goes unanswered doubles the wait, up to `MAX_STALLED_PROBE_BACKOFF_MS`.
 */
export const STALLED_PROBE_BACKOFF_MS = 1_000

/**
 * Round trips (the msgrate estimate) after which a trie-node request is late: its nodes are also asked of
 * peers that have nothing else to do. Requests are sized to be answered within about one round trip, so two
 * is well past the usual answer, and far short of the timeout (three round trips over the confidence, up to
 * ten seconds) that a silent peer would otherwise hold the nodes for.
 */
export const HEDGE_AFTER_ROUND_TRIPS = 2

/**
 * Copies of one task given in one pass to idle peers not trusted with copies (none has answered a copy in full
 * yet, or each held one back or answered one short). Such a copy holds nothing back: the next pass may give the
 * task to other idle peers, so a peer quick with other requests but silent on copies (a sybil of the slow peer)
 * delays nothing. A trusted peer is given a task's only copy.
 */
export const UNTRUSTED_COPIES = 2

/** Longest wait between two probes of a peer that does not answer: a minute of silence costs one tiny request. */
export const MAX_STALLED_PROBE_BACKOFF_MS = 60_000

/**
 * How long a syncer leaves a peer alone after it answered RATE_LIMITED (its request tokens or its reply budget
 * ran out), before asking it again. A refusal says "later", not "liar": it is no failed attempt and no offence,
 * and the peer is back in the rotation once the wait ends. A server's token bucket refills in well under a
 * second; its reply budget empties when the replies it holds are read or, for peers that never read, at its
 * write deadline (10 s by default). Refusals in a row double the wait up to `MAX_BUSY_PEER_BACKOFF_MS`.
 */
export const BUSY_PEER_BACKOFF_MS = 500

/**
 * Longest wait between two requests to a peer that keeps answering RATE_LIMITED. Short, unlike a silent peer's
 * minute: the peer is there and a refusal costs it a few bytes, so a client asks again within seconds of the
 * server having room; one that waited a minute, or for the next status round (30 s), was seen to lose a whole
 * budget-flood's length of time after the flood ended.
 */
export const MAX_BUSY_PEER_BACKOFF_MS = 4_000

/**
 * Largest reply frame a client accepts: the payload cap plus room for RLP headers (at most 9 bytes per item and
 * per list), so a reply the server legitimately filled to `MAX_RESPONSE_BYTES` always fits. Requests have caps
 * of their own, far smaller (`MAX_*_REQUEST_BYTES` below).
 */
export const MAX_FRAME_BYTES = MAX_RESPONSE_BYTES + 64 * 1024

/**
 * The least reply room a server reserves from a busy reply budget (`ReplyBudget`) for a reply that can be cut
 * short, a nodes or a contents reply (the client asks again for what it left out): one is reserved only what
 * fits the asker's share, down to this, rather than a whole frame. 192 KiB of nodes or items and the frame's
 * room for headers. Reserving whole frames let 31 peer ids, each with one reply being built, fill the 64 MiB
 * budget and keep an honest client refused; at this size it takes 256.
 */
export const MIN_REPLY_RESERVE_BYTES = 256 * 1024

/**
 * How much a server reads from its store at a time to build a nodes reply (`answerNodes`): for a reply of 2 MiB,
 * this many of the largest values its store may hold (fewer in proportion for a smaller reply), so building a
 * reply holds at most 8 times its room in values besides the reply, and all replies being built at most 8 times
 * the reply budget (512 MiB). A store that knows its largest value (`KVStore.largestValueBytes`: `LevelStore`
 * and `MemoryStore` do) and holds only small nodes is read 1,024 hashes at once; one that does not know (a
 * `LevelStore` an earlier version wrote) 16 at a time. Reading a request's 1,024 at once let one peer id take a
 * server to 3.2 GB of RSS with a trie's largest leaves, and 31 through a slow proxy to 11 GB. Measured on
 * LevelDB, 100k nodes of 150 bytes: 5.7 ms a 1,024-hash request read at once, 7.6 ms in chunks of 64, 9.8 in
 * chunks of 16; `bench:burst`'s 50 joiners of a server took a median of 71-85 s with chunks of 64 or fewer
 * (single runs), 53 s read at once. Limiting the reads a server makes at once (4 or 16) instead made them take
 * 90-99 s, some of them failing.
 */
export const NODES_READ_CHUNK = 16

/** Concurrent inbound streams per connection and protocol; libp2p resets streams beyond it. */
export const MAX_INBOUND_STREAMS = 16

// ---- request frame caps: the largest legal request of each protocol, byte for byte ----------------------
//
// A served protocol reads the request's length prefix first and refuses a longer frame before buffering any of
// it (`frameHandler`), so a peer cannot make us hold more than this per stream. Each cap is the RLP encoding of
// the largest request the protocol's decoder accepts (`test/net/request-caps.test.ts` encodes it and checks):
//   topic   a byte string of at most MAX_TOPIC_BYTES (256): header 0xb9 + 2 length bytes + 256     = 259
//   uint    at most 7 bytes (a safe integer, `expectUint`): header + 7                              =   8
//   amount  at most MAX_ITEMS_PER_REQUEST (256), two bytes: header + 2                              =   3
//   hash    32 bytes (a root, a node hash): header + 32                                             =  33
// and a list of payload p > 255 bytes (all of the below) has a 3-byte header (0xf9 + 2 length bytes).

/** `[topic]`: 3 + 259. */
export const MAX_STATUS_REQUEST_BYTES = 262

/** `[topic, from, amount, root]`: 3 + 259 + 8 + 3 + 33. */
export const MAX_CONTENTS_REQUEST_BYTES = 306

/** `[topic, from, to]`: 3 + 259 + 8 + 8. */
export const MAX_HASHES_REQUEST_BYTES = 278

/**
 * `[[hash…], subtrieBytes]` with MAX_NODES_PER_REQUEST (1,024) hashes and `subtrieBytes` up to
 * `MAX_RESPONSE_BYTES`: the inner list's payload is 1,024 × 33 = 33,792 bytes (header 3), the integer 4, the
 * outer list's payload 33,799 (header 3). The largest request of any protocol, and under 34 KB: a
 * stream that never finishes its frame holds at most this (the caps were 2.1 MiB, `MAX_FRAME_BYTES`, until
 * 512 half-sent frames took a server from 291 MB to 1.42 GB).
 */
export const MAX_NODES_REQUEST_BYTES = 33_802

/**
 * How long a peer has to deliver its whole request frame once it opens a stream; past it the stream is reset
 * and the peer charged a limit violation. An honest client writes its frame (at most
 * `MAX_NODES_REQUEST_BYTES`, one write) as soon as the stream is open, so the frame arrives within a round trip
 * plus its transmission; five seconds leave room for a slow link and a server whose event loop was busy,
 * as libp2p's identify gives its whole exchange. Without it a stream that never finishes its frame held its
 * buffer and its stream slot for the whole request timeout, and was not counted against its peer.
 */
export const DEFAULT_REQUEST_FRAME_TIMEOUT_MS = 5_000

/** Longest topic name accepted on the wire and in the store (gossipsub topic names are short strings). */
export const MAX_TOPIC_BYTES = 256

/**
 * Largest item a topic carries. Items travel live over gossipsub, which silently drops messages past about
 * 1 MiB, so anything near that could never be delivered live.
 */
export const MAX_ITEM_BYTES = 512 * 1024

/**
 * Largest signed checkpoint record accepted (status replies, gossip, the store). An Ed25519-signed envelope of
 * a 256-byte topic name, two hashes and three integers is under 500 bytes; RSA keys add about 300 more.
 */
export const MAX_CHECKPOINT_RECORD_BYTES = 2048

/**
 * Most nodes in a contents reply's range proof: the two edge paths of an 8-byte key (16 nibbles) hold at most
 * 17 nodes each, so 64 leaves room for nothing but padding.
 */
export const MAX_PROOF_NODES = 64

/** Most items in one contents request and reply (DESIGN batch size 64, with headroom for larger batches). */
export const MAX_ITEMS_PER_REQUEST = 256

/** Most hashes in one hashes request: 32 bytes each, so 8192 hashes stay near 256 KiB. */
export const MAX_HASHES_PER_REQUEST = 8192

/**
 * Bytes of node writes gathered before `importSorted` hands them to the store in one batch. Big enough that
 * a LevelDB batch amortises its fixed cost over thousands of nodes, small enough that the pending batch of a
 * million-key import stays a few MiB rather than the whole trie.
 */
export const DEFAULT_IMPORT_BATCH_BYTES = 4 * 1024 * 1024

/**
 * Longest key, in bytes, a range proof may carry. Rebuilding the range's subtrie recurses once per node on a
 * key's path, and a path has at most two nodes per key byte, so this bounds the recursion depth (about 1,000
 * frames here) well inside the default JavaScript stack; without it a peer could send long keys that share
 * long prefixes and crash the verifier with a RangeError instead of a typed error. Trie keys in practice are
 * 32-byte hashes (Ethereum state and storage) or 8-byte item numbers (the topic trie).
 */
export const MAX_RANGE_KEY_BYTES = 256

/**
 * Bytes of recently read items a `TopicStore` keeps in memory, and the largest item it keeps. A serving node
 * reads the same items for each joiner of a topic, and LevelDB costs about 4 µs an item read (measured on this
 * machine kind, 256 consecutive small items by `getMany`: 1.1-1.2 ms), most of what a contents reply of small
 * items costs to build. Large items are left out: their read is cheap beside their transfer, and a few would push
 * out thousands of small ones.
 */
export const DEFAULT_ITEM_CACHE_BYTES = 16 * 1024 * 1024
export const MAX_CACHED_ITEM_BYTES = 16 * 1024
/**
 * Bytes of item hash runs (8 KiB each, 256 hashes) a `TopicStore` keeps in memory beside its items, when it
 * keeps items at all: 512 runs, the hashes of 131,072 items. A hashes reply of 8,192 hashes reads 32 or 33 runs.
 */
export const HASH_RUN_CACHE_BYTES = 4 * 1024 * 1024

/**
 * Request tokens (status, contents and hashes together; nodes in a bucket of their own) one peer may spend at a
 * server per second, and the burst it may save up. A request costs `requestTokens(asked)`: one token per
 * `REQUEST_COST_UNIT` items, hashes or nodes it asks for, at least one. The limit is there against floods, not
 * against honest catch-up: the downloader's best measured rate from one server, 15.7k items/s, spends about 250
 * tokens a second on contents (as many again on hashes when it checks items against them instead of proofs),
 * and a trie sync's 26k nodes/s about 410; a Fetcher paces itself below this
 * (`DEFAULT_OUTBOUND_REQUESTS_PER_SECOND`), and no client has more than a few requests in flight at a peer
 * (`DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER`, `MAX_NODE_REQUESTS_PER_PEER`), so a burst of 250 tokens is never
 * what holds an honest one back. A flooding peer is answered RATE_LIMITED past its burst (a reply of a few
 * bytes), each refusal a limit violation, and can make the server read at most 32k items, hashes or nodes a
 * second. Lodestar limits `BeaconBlocksByRange` per peer the same way, by blocks asked rather than by requests.
 *
 * History: 50 and 40 requests a second capped a 20k-item sync at ~1.3k items/s per peer; then 1000 requests a
 * second and a burst of 1000, counting requests and not their size, let one peer ask for 8,192 hashes more
 * often than a server could read them, so the limit never engaged while each request cost the server five
 * times what it cost the sender. Measured with `test/cli/serve-attack.test.ts` (a `dsfg serve` on LevelDB, a
 * flood of 8,192-hash requests until the flooder is cut off): at 1000 tokens a second and a burst of 1000 the
 * server still served 12 to 15 of them (40 ms each) and spent about twice the flooder's CPU; at 500 and 250 it
 * serves 2 or 3, and what it spends is mostly the streams, as the flooder does.
 */
export const DEFAULT_INBOUND_REQUESTS_PER_SECOND = 500
export const DEFAULT_INBOUND_REQUEST_BURST = 250

/**
 * Reply bytes a server holds at once, over all peers and served protocols: from when a reply is built until its
 * stream has written it out (or is closed or aborted). The rate limit bounds how fast a peer asks, not how long
 * it takes to read: a peer that pauses its reader holds each reply in our write buffer until the write deadline
 * (`DEFAULT_REQUEST_TIMEOUT_MS`). 16 streams a connection × 2 MiB replies is 32 MiB a peer id, and peer ids are
 * free: an outside tester took a `dsfg serve` from 188 MB to 513 MB with 8 of them and to 1.2 GB with 24. Past
 * the budget a request is answered RATE_LIMITED (a few bytes) instead of being built, unless peers holding more
 * than its own peer give up replies they left stalled (`ReplyBudget`, `REPLY_STALL_MS`): without that, 6 fresh peer ids that
 * never read kept every honest client out for as long as they went on. 64 MiB is thirty full replies, five
 * peers' shares: more than honest clients keep unread at once, and a bound a small serving node can afford
 * beside its own heap.
 */
export const MAX_SERVING_REPLY_BYTES = 64 * 1024 * 1024

/**
 * How long a reply's reader may take no byte of it before the reply counts as stalled, and may be given up for
 * a peer holding less of a full reply budget (`ReplyBudget`). Longer than the pauses of an honest reader on a
 * thin link (a round trip between window updates: 80-300 ms on the links `bench:links` emulates), so a reply
 * being read is never given up; and until a reply stalls, a request that finds the budget full is refused,
 * which costs nothing, instead of evicting a reply only just built: evicting at once let an outside tester's
 * peer ids that never read make the server build and drop thousands of 2 MiB replies (2-4.7× their CPU, 1.6 GB
 * of RSS) and evict an honest joiner's replies until its download gave up.
 */
export const REPLY_STALL_MS = 1_000

/**
 * Bytes of a reply a server hands its stream at a time, the next piece once the last has left the write buffer.
 * A yamux sender sends what it has buffered as one data frame of up to the reader's whole window (256 KiB), and
 * a reader sees a frame, and grants more window, only once all of it arrived: a reply written whole stopped its
 * stream for a round trip at every window, 77% of an 80 ms, 8 Mbit/s link at best for one stream (measured: a
 * topic sync's replies on one stream took 80% of such a link). In 64 KiB frames the reader's grants come back
 * while the rest of the window is still on its way: a stream fills its link up to 192 KiB per round trip.
 */
export const REPLY_PIECE_BYTES = 64 * 1024

/**
 * The share of `MAX_SERVING_REPLY_BYTES` one peer may hold, so one peer id cannot take the whole budget: room for
 * what one honest peer asks of a server at once, 5 topic requests (`DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER`) of up
 * to `MAX_FRAME_BYTES` each, with 1.5 MiB to spare for nodes and status replies.
 */
export const MAX_SERVING_REPLY_BYTES_PER_PEER = 12 * 1024 * 1024

/**
 * Items, hashes or trie nodes a request may ask for per token of the request limiters (inbound and outbound).
 * Measured on this machine kind (`TopicStore` in memory and on LevelDB), a server spends 2 to 12 µs per item,
 * hash or node it reads and encodes, and 30 to 170 µs on a request's fixed part (decode, store round trip,
 * reply), before the stream itself: 64 elements cost about what a request's fixed part does, so a token is one
 * small request's worth of work. The DESIGN's batch of 64 items, and any status request, cost one token as
 * every request did before; the largest requests cost 4 (256 items), 6 (384 nodes) and 128 (8,192 hashes).
 */
export const REQUEST_COST_UNIT = 64

/**
 * Request tokens (`requestTokens`, as a server counts them) per second a Fetcher spends at one peer, and the
 * burst. Below the server's inbound rate and burst, so honest peers with default settings never rate-limit each
 * other; Prysm learnt to pace each outgoing peer from
 * day one (PR #5148) and to compute the wait for a token rather than poll (PR #11853).
 */
export const DEFAULT_OUTBOUND_REQUESTS_PER_SECOND = 400
export const DEFAULT_OUTBOUND_REQUEST_BURST = 200

/**
 * Requests in flight to one peer from one Fetcher, over every topic and protocol; more wait their turn in order.
 * Lodestar settled on two (#6435, #8033): one in flight while the previous reply is on the wire. Here a topic
 * sync keeps `DEFAULT_TOPIC_REQUESTS_PER_PEER` (4) contents requests at a peer (see there), and one more slot
 * lets its content-hash fetch ahead go out beside them. The cap is per peer,
 * never global, so a slow or rate-limiting peer delays only the requests addressed to it.
 */
export const DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER = 5

/**
 * Contents requests a client may write on one long-lived `/dsfg/contents/2.0.0` stream ahead of their replies, and
 * a server reads ahead of its answers: as many as a Fetcher has in flight to one peer. On a stream a request, the
 * multistream-select confirmation of each new stream queued behind the replies already on the link (up to 0.8 s
 * on an emulated 80 ms, 8 Mbit/s link), and replies on parallel streams shared the link and ended together, so
 * the link sat idle for a round trip every few replies; on one stream the replies leave in order, one after
 * another, and the next request is already at the server.
 */
export const MAX_PIPELINED_CONTENTS_REQUESTS = DEFAULT_OUTBOUND_CONCURRENCY_PER_PEER

/**
 * How long a contents stream a joiner opened beside a status request (`Fetcher.prepareContents`) waits for its
 * first request before it is closed unused. The request follows the status reply at once when the peer has
 * items; a server charges a stream that brings no frame within its frame deadline
 * (`DEFAULT_REQUEST_FRAME_TIMEOUT_MS` by default, and a server may set less), so an unused one is closed well
 * before any deadline an honest server could keep (a round trip and more).
 */
export const PREPARED_SESSION_UNUSED_MS = 500

/**
 * How long after the end of a reply on a long-lived stream (`FrameSession` with transfer deadlines) the next
 * reply's first byte may take, once its request has waited longer than the request timeout. A server answers a
 * stream's pipelined requests as it reads them and writes the replies back to back, so an honest one has the
 * next reply ready; 2 s leaves room for a busy server's pauses.
 */
export const PIPELINED_REPLY_GAP_MS = 2_000

/**
 * How often a known peer is asked for its topic state again. The downloader only needs a peer's `head` to
 * cover the range it asks for, and a peer that fell behind answers short or UNAVAILABLE without blame; new
 * heads also arrive through gossip. Half a minute keeps status traffic at one tiny request per peer and topic
 * while letting a peer that pruned or caught up be noticed well within one batch timeout cycle of a long sync.
 */
export const DEFAULT_STATUS_REFRESH_MS = 30_000

/**
 * Bytes of items, item hashes and trie nodes `TopicStore` gathers into one store batch when it writes many
 * items at once (`appendMany`, `adoptTrie`). Each batch is atomic and carries the topic's head with it, so
 * this is also the most work a crash can lose. The same 4 MiB as `DEFAULT_IMPORT_BATCH_BYTES`, for the same
 * reason: thousands of small items amortise a LevelDB write, while a 512 KiB item still shares its batch
 * with a few others and the pending batch stays a few MiB, never a whole topic.
 */
export const DEFAULT_TOPIC_BATCH_BYTES = 4 * 1024 * 1024

/**
 * Items of its input `dsfg publish` holds at once: it reads the input a batch at a time, stores the batch, and
 * reports progress between batches, so memory follows a batch, not the file. 4096 small items amortise a
 * store write (the store splits larger batches by `DEFAULT_TOPIC_BATCH_BYTES` anyway).
 */
export const DEFAULT_PUBLISH_BATCH_ITEMS = 4096

/**
 * Bytes of items that end a publish batch before `DEFAULT_PUBLISH_BATCH_ITEMS` do: 4096 items of 512 KiB would
 * be 2 GiB. A batch holds at most this plus one item; the same 4 MiB as a store batch.
 */
export const DEFAULT_PUBLISH_BATCH_BYTES = DEFAULT_TOPIC_BATCH_BYTES

/**
 * Live items held while a gap before them is downloaded. Gossip may run ahead of the downloader; past this
 * many the newest are dropped (the downloader fetches them later), so a flood cannot grow memory.
 */
export const MAX_LIVE_BUFFER_ITEMS = 4096

/**
 * Item hashes a topic sync fetches at once to check downloaded batches against (one hashes request covers 16
 * batches of 64 instead of doubling the requests). 1024 hashes are a 33 KiB reply.
 */
export const HASH_PREFETCH_ITEMS = 1024

/**
 * Verified batches a topic sync may have handed to the store and not yet seen written. The downloader checks
 * the next batch while the store writes the last one (measured on loopback: the wait for each LevelDB batch
 * was over half of the delivery time); two is enough to keep both busy and bounds what a slow store holds
 * in memory to two batches.
 */
export const TOPIC_WRITES_IN_FLIGHT = 2

/**
 * Items per batch (and per contents request) when syncing a topic: the protocol's maximum. Each request
 * costs a stream open and a round trip; measured with `npm run bench:topic-sync` (20k items of 1 KiB, one
 * server on loopback), 256 gave 6.0k items/s against 4.8k with the downloader core's default of 64. Replies
 * are still capped by bytes, so large items come back as prefixes and the rest is asked for again.
 */
export const DEFAULT_TOPIC_BATCH_ITEMS = MAX_ITEMS_PER_REQUEST

/**
 * Items per batch before a topic sync has seen how large the topic's items are: 16 items of up to 128 KiB fill
 * one reply. From the first verified batch on, batches are sized to what one reply (`MAX_RESPONSE_BYTES`)
 * carries, up to `DEFAULT_TOPIC_BATCH_ITEMS`: starting at 256 items meant a window of batches of 64 KiB items
 * held 256 MiB, and each batch took eight requests one after another before it could be delivered.
 */
export const DEFAULT_TOPIC_FIRST_BATCH_ITEMS = 16

/**
 * Contents requests one topic sync keeps in flight at each peer, written ahead on the peer's one contents stream
 * (`MAX_PIPELINED_CONTENTS_REQUESTS`): the next replies are built while one is on the wire. Chosen when each
 * request was a new stream costing two round trips before its reply (then two in flight capped a peer 50 ms away
 * at about 5 MB/s of 1 KiB items); on one stream, 2 and 3 measured the same as 4 over 80 ms, 8 Mbit/s links
 * (`bench:links`, 2026-12-04). Far inside a server's limits (`DEFAULT_INBOUND_REQUESTS_PER_SECOND`). Lodestar
 * uses two per peer with far larger requests (blocks).
 */
export const DEFAULT_TOPIC_REQUESTS_PER_PEER = 4

/**
 * How long the contents requests a topic sync has in flight at one peer should take together, at the rate that
 * peer's link has delivered so far (go-ethereum's msgrate sizes requests to a target round trip the same way):
 * a peer gets as many requests as its link carries in this time, plus one, up to
 * `DEFAULT_TOPIC_REQUESTS_PER_PEER`. At 8 Mbit/s that is 4 MB, four reply-sized requests; at 2 Mbit/s, two. A
 * request is a whole batch: requests also used to be cut to what the link carries in this time (15 items of
 * 64 KiB at 2 Mbit/s), but on a peer's one contents stream the rest of a cut batch waited behind the next
 * batch's request, and no item was stored for longer than `dsfg sync` waits.
 */
export const DEFAULT_TOPIC_REPLY_TARGET_MS = 4_000

/**
 * The topic downloader's own deadline for one contents request, a backstop behind the Fetcher's: there a reply
 * may take as long as it keeps coming (`DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND` after `DEFAULT_REQUEST_TIMEOUT_MS`),
 * so a full reply at the floor takes 10 s + 2.06 MiB / 32 KiB/s = 76 s; another 10 s covers a wait for the
 * peer's request slot. The queue's usual fixed 10 s (`DEFAULT_FETCH_TIMEOUT_MS`) failed every reply longer
 * than a thin link carries in 10 s (issue 13).
 */
export const DEFAULT_TOPIC_FETCH_TIMEOUT_MS =
  2 * DEFAULT_REQUEST_TIMEOUT_MS + Math.ceil((MAX_FRAME_BYTES * 1000) / DEFAULT_MIN_TRANSFER_BYTES_PER_SECOND)

/**
 * Batches a topic sync holds downloading or downloaded: room for four peers' `DEFAULT_TOPIC_REQUESTS_PER_PEER`
 * requests. Batches are sized to one reply (`MAX_RESPONSE_BYTES`), so this holds at most about 32 MiB; a batch
 * opened before its items turned out larger is split once it holds a reply's worth (`QueueInit.splitBytes`).
 */
export const DEFAULT_TOPIC_WINDOW = 16

/**
 * How many of our newest items a topic sync re-checks against peers before downloading more (the DSFG
 * design's start-back margin, Prysm's 32 slots). Items that arrived live without a configured publisher are
 * stored unverified; if `quorum` peers agree that our tip differs from theirs, the wrong part is dropped and
 * downloaded again, instead of being extended.
 */
export const DEFAULT_START_BACK = 32

/**
 * How long that re-check waits for peers' hashes of our newest items. A check with too few answers changes
 * nothing, so it need not wait a request's whole deadline: a peer answering 6 s late added 6 s to each run of
 * a sync without a publisher.
 */
export const TIP_CHECK_WAIT_MS = 3_000

/** Bytes of live items held past a gap; with `MAX_LIVE_BUFFER_ITEMS`, what bounds the buffer's memory. */
export const MAX_LIVE_BUFFER_BYTES = 32 * 1024 * 1024

/**
 * Least time between two status refreshes triggered by gossip that shows a peer ahead of us: a flood of
 * gossiped numbers must not turn into a flood of status requests.
 */
export const GOSSIP_HINT_INTERVAL_MS = 1000

// ---- gossip without a publisher (src/topic/gossip-feeds.ts) -------------------------------------------

/**
 * Largest message a gossip validator accepts for a listener without a publisher (a topic in quorum mode). Such a
 * message is vouched for by nobody, yet we relay it to our mesh peers, so its size is bounded well below the
 * 512 KiB an item may be (`MAX_ITEM_BYTES`): a larger item is IGNOREd on gossip, not rejected (it is legal),
 * and reaches a follower through the downloader, which checks it against a quorum. 64 KiB keeps a flood of
 * them to a small multiple of ordinary traffic per mesh peer.
 */
export const MAX_OPEN_GOSSIP_BYTES = 64 * 1024

/**
 * Kilobytes per second (counting every message as at least one) that gossip without a publisher may bring in
 * per topic, and per topic from each propagation source, with a burst of one second's worth. Past either, a
 * message is IGNOREd: neither delivered nor relayed, and not held against its source (an honest peer may relay
 * a flooder's messages). Without it the validator accepted and relayed every well-formed item from anyone.
 * 1 MiB/s per topic is far above the live traffic of a topic (the demo's publisher gossips a few hundred
 * small items a second); a quarter of it per source keeps one flooding neighbour from taking the whole budget
 * of a topic, while a topic whose items all come through one neighbour still gets 256 KiB/s live and the rest
 * through the downloader.
 */
export const OPEN_GOSSIP_KIB_PER_SECOND_PER_TOPIC = 1024
export const OPEN_GOSSIP_KIB_PER_SECOND_PER_SOURCE = 256

/** Items `TopicHandle.items()` reads from the store per step: what a slow consumer holds in memory at most. */
export const ITEMS_READ_CHUNK = 256

/**
 * Checkpoint sync: when a trusted checkpoint (the publisher's, or one a quorum of peers report) is at least
 * this many items past our head, the topic trie at its root is trie-synced (complete subtries we already
 * hold are skipped) and adopted, while the downloader fetches the items after it. Closer checkpoints are
 * simply downloaded: a trie sync's fixed cost (its spine, the adoption's read of every leaf) is not worth it.
 */
export const DEFAULT_CHECKPOINT_SYNC_MIN_ITEMS = 1024

/**
 * A newer checkpoint re-targets a running checkpoint sync only when it is at least this many items past the
 * checkpoint being synced: each re-target restarts the trie scheduler at the new root (its spine and new
 * leaves are fetched again), while the items in between are the downloader's job anyway. A publisher that
 * checkpoints every few seconds would otherwise re-target the trie sync with every announcement.
 */
export const DEFAULT_TRIE_RETARGET_MIN_ITEMS = 512

/**
 * Requests a serving node refuses from one peer (answered RATE_LIMITED, or request frames past their cap, late
 * or cut short) before it penalises the peer and closes its connections. At the default rate an honest
 * syncer is never refused at all; a flooder reaches this within a fraction of a second.
 */
export const MAX_LIMIT_VIOLATIONS = 100

/**
 * How long a peer disconnected for its offences has its inbound connections refused, right after their
 * encryption handshake, and is not dialled (`Dsfg.refusesPeer`, which `createDsfgNode`'s connection gater asks). Without it a
 * flooder cut off dialled straight back, and each return cost the server a full connection (muxer, identify,
 * gossipsub) and a few more refusals before the next cut: 12 returns in one second's hashes flood.
 */
export const PEER_CUT_OFF_MS = 60_000

/** Peers a node keeps refusing at once (`PEER_CUT_OFF_MS`): past it the oldest cut-off is forgotten first. */
export const MAX_CUT_OFF_PEERS = 1024

/**
 * LevelDB's memtable (`writeBufferSize`, 4 MiB by default). A sync writes each item twice (the item, and the
 * topic trie leaf that holds it, under a random hash key), and with 4 MiB memtables LevelDB spent most of its
 * time flushing and compacting small overlapping tables: measured here (classic-level, 2 vCPUs), 786 MB of
 * such writes in 2 MiB batches took 16.3 s with 4 MiB, 7.8 s with 32 MiB and 3.3 s with 64 MiB; a topic
 * sync of 5k items of 64 KiB waited on the store for most of its time. LevelDB holds at most two memtables
 * (one being flushed), so this bounds the extra memory a writing node uses to about 64 MiB; an idle or
 * serving node never fills one.
 */
export const DEFAULT_LEVEL_WRITE_BUFFER_BYTES = 32 * 1024 * 1024

/**
 * LevelDB's table file size (`maxFileSize`, 2 MiB by default): larger tables mean fewer files per compaction
 * and fewer compactions started; with 32 MiB memtables, 16 MiB tables wrote the 786 MB above in 5.1 s
 * instead of 7.8 s.
 */
export const DEFAULT_LEVEL_MAX_FILE_BYTES = 16 * 1024 * 1024

// ---- the peer ledger (src/peers/peer-scorer.ts) ---------------------------------------------------------

/**
 * The score at which a peer is disconnected. 100 is also the largest value libp2p accepts for a peer store
 * tag, so the `dsfg-penalty` tag shows the score as it is, 100 meaning "cut off". A peer is disconnected when
 * its score, rounded as the tag shows it, reaches this.
 */
export const PEER_SCORE_THRESHOLD = 100

/**
 * Scores halve every five minutes, so an old offence does not count for ever: offences that are a pattern
 * (three severe ones within about two minutes) reach the threshold, while an honest peer that once sent a
 * bad reply (a bug, a race with its own pruning) is back to a clean record within half an hour.
 */
export const PEER_SCORE_HALF_LIFE_MS = 5 * 60_000

/**
 * How long a peer penalised but not disconnected is left out of the topic downloader before it is asked
 * again. Long enough that the batches it spoiled go to other peers first (a request deadline,
 * `DEFAULT_REQUEST_TIMEOUT_MS`); short enough that a peer blamed once, when it is the only source, holds the
 * sync up for seconds rather than for as long as it stays connected.
 */
export const PEER_COOL_DOWN_MS = 10_000

/**
 * Least time between two writes of one peer's `dsfg-penalty` tag (the first is written at once, a disconnect
 * never waits). A flood of refused requests is a limit violation each, and a peer store write for each one
 * was the largest part of what refusing them cost; a second is as fresh as anything reading the tag needs.
 */
export const PEER_TAG_WRITE_INTERVAL_MS = 1_000

/**
 * Peers the ledger keeps a score for. A peer's entry goes once its score has decayed to nothing; past this
 * many live entries the lowest score is dropped, so that a swarm of throwaway identities costs bounded memory
 * and can push out only the records that matter least.
 */
export const MAX_SCORED_PEERS = 1024

/**
 * Items a range proof against a checkpoint root signed by the publisher does not prove: no honest peer sends
 * them (a peer without that root's trie answers UNAVAILABLE), so two reach the threshold. Not one, so that a
 * single bug on either side does not cost a peer its connection.
 */
export const OFFENCE_WEIGHT_BAD_PROOF = 60

/**
 * Data that fails a check of its own (items out of their range, out of order, duplicated or missing; an item
 * whose hash differs from the one expected; trie nodes that hash to nothing we asked for; a checkpoint record
 * whose signature does not verify): three within a couple of minutes reach the threshold, as the three
 * offences of `MAX_PEER_OFFENCES` did.
 */
export const OFFENCE_WEIGHT_BAD_DATA = 40

/** A reply that does not decode or breaks the protocol's shape: as severe as bad data, three of them. */
export const OFFENCE_WEIGHT_MALFORMED = 40

/** A reply frame past its size limit: the stream was cut, and no honest server sends one. Three of them. */
export const OFFENCE_WEIGHT_OVERSIZED = 40

/**
 * Without a publisher, a peer whose copy of a batch lost to the copy a quorum agreed on. Weaker evidence than
 * a failed check (with a small quorum an honest peer can be outvoted by liars), so it takes four or five.
 */
export const OFFENCE_WEIGHT_OUTVOTED = 25

/**
 * A request refused for passing a limit (RATE_LIMITED; a request frame past its cap, late or cut short). Light: an
 * honest peer may burst past the rate now and then; `MAX_LIMIT_VIOLATIONS` of them in a short while (a flood,
 * within a second) reach the threshold.
 */
export const OFFENCE_WEIGHT_LIMIT = PEER_SCORE_THRESHOLD / MAX_LIMIT_VIOLATIONS

/**
 * A peer whose trie-node request timed out (reported once until it answers again): slow is not malicious (a
 * loaded or distant peer), so ten such stalls in a few minutes are needed, and the peer is only probed
 * meanwhile.
 */
export const OFFENCE_WEIGHT_STALLED = 10
