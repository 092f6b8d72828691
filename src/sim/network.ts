import { type Random, randomInt } from '../util/random.js'

/** Faults of the simulated network; every field can change during a run. */
export interface LinkFaults {
  /** One-way latency is uniform in [minLatencyMs, maxLatencyMs]; a spread reorders messages. */
  minLatencyMs: number
  maxLatencyMs: number
  /** Probability that a datagram is lost. Streams are reliable (TCP), unless the link is cut. */
  loss: number
  /** Probability that a datagram is delivered twice. */
  duplicate: number
}

/** Per-node traffic counters kept by the network (what crossed the wire, as the sender handed it over). */
export class NodeTraffic {
  datagramsOut = 0
  datagramBytesOut = 0
  streamsOut = 0
  streamBytesOut = 0
  datagramsIn = 0
  datagramBytesIn = 0
}

/**
 * The simulator's in-memory network: it carries the bytes the real codec
 * produced, enforces the datagram size limit, counts traffic, and decides the
 * fate of each message (loss, duplication, latency, partitions, crashed
 * receivers). All randomness comes from the seeded source it is given.
 */
export class SimNetwork {
  readonly faults: LinkFaults = { minLatencyMs: 1, maxLatencyMs: 1, loss: 0, duplicate: 0 }
  /** Partition group of each node; nodes in different groups cannot reach each other. Empty: no partition. */
  private groups: Int32Array | undefined
  readonly traffic: NodeTraffic[] = []
  oversizedDropped = 0
  lost = 0
  cut = 0
  /** Everything handed to the network so far (sum of the per-node `*Out` counters, kept so it costs nothing to read). */
  messagesOut = 0
  bytesOut = 0
  /** The delays of the last `route` call's copies. */
  readonly delays = new Float64Array(2)

  constructor(
    private readonly random: Random,
    readonly maxPacketBytes: number,
  ) {}

  ensureNode(index: number): void {
    while (this.traffic.length <= index) this.traffic.push(new NodeTraffic())
  }

  /** Splits the nodes into groups (`groupOf[i]` for node i); messages between groups are dropped. */
  partition(groupOf: (index: number) => number, nodeCount: number): void {
    const g = new Int32Array(nodeCount)
    for (let i = 0; i < nodeCount; i++) g[i] = groupOf(i)
    this.groups = g
  }

  heal(): void {
    this.groups = undefined
  }

  reachable(from: number, to: number): boolean {
    const g = this.groups
    if (g === undefined) return true
    return g[from] === g[to]
  }

  /**
   * Decides the fate of one message: how many copies arrive (0 dropped, 1
   * normally, 2 when duplicated), their delays written to `delays` (read
   * before the next call; a field, not a fresh array, as it runs for every
   * message of the simulation).
   */
  route(from: number, to: number, bytes: number, stream: boolean): number {
    const t = this.traffic[from]!
    this.messagesOut++
    this.bytesOut += bytes
    if (stream) {
      t.streamsOut++
      t.streamBytesOut += bytes
    } else {
      t.datagramsOut++
      t.datagramBytesOut += bytes
      if (bytes > this.maxPacketBytes) {
        this.oversizedDropped++
        return 0
      }
    }
    if (!this.reachable(from, to)) {
      this.cut++
      return 0
    }
    const f = this.faults
    if (!stream && f.loss > 0 && this.random.next() < f.loss) {
      this.lost++
      return 0
    }
    this.delays[0] = this.latency()
    let copies = 1
    if (!stream && f.duplicate > 0 && this.random.next() < f.duplicate) this.delays[copies++] = this.latency()
    const r = this.traffic[to]
    if (r !== undefined && !stream) {
      r.datagramsIn += copies
      r.datagramBytesIn += bytes * copies
    }
    return copies
  }

  private latency(): number {
    const { minLatencyMs: lo, maxLatencyMs: hi } = this.faults
    if (hi <= lo) return lo
    return lo + randomInt(this.random, Math.round(hi - lo) + 1)
  }
}
