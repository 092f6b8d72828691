/**
 * Hostile input against the real receive path: a corpus of valid packets
 * captured from a simulated cluster, mutated (bit flips, cuts, extensions,
 * splices, swapped ranges, extreme varints) or replaced by random bytes,
 * and fed to one node of a running simulated cluster between its normal
 * messages. Used by `npm test` (100,000 inputs) and `npm run fuzz` (longer).
 */
import type { DropReason } from '../../src/errors.js'
import { MemberStatus } from '../../src/membership/member.js'
import { type SimNode, Simulation } from '../../src/sim/simulation.js'
import { type Random, SeededRandom, randomInt } from '../../src/util/random.js'

const SECOND = 1000

export interface Corpus {
  readonly datagrams: Buffer[]
  readonly streams: Buffer[]
}

/**
 * Valid packets of every kind a cluster sends: a run with joins, writes,
 * overwrites, deletes, TTLs, a large value (streams), a restart (resets and
 * syncs), a crash (suspicion), a leave. At most `max` of each transport.
 *
 * The corpus comes from another cluster (other node names, so other write
 * origins) than the one fuzzed. In plaintext a sender that reaches the port
 * is trusted like a member (as with memberlist without encryption): well-
 * formed data it sends is taken and spread, and it could claim writes in a
 * member's name that the member never made, which no plaintext protocol can
 * tell from real ones. The fuzz checks robustness against malformed and
 * foreign input; keeping senders out is encryption's job, fuzzed separately.
 */
export function captureCorpus(seed: number, max = 3000, encryption?: { keys: readonly string[] }): Corpus {
  const sim = new Simulation({ seed, engine: { tombstoneRetentionMs: 3 * SECOND }, ...(encryption ? { encryption } : {}) })
  const datagrams: Buffer[] = []
  const streams: Buffer[] = []
  const seenTypes = new Map<number, number>()
  sim.onDeliver = (_from, _to, bytes, stream) => {
    const list = stream ? streams : datagrams
    if (list.length >= max) return
    // Keep every kind: at most max/8 of any one first-three-bytes shape.
    const shape = (bytes[0]! << 16) | ((bytes[1] ?? 0) << 8) | (bytes[2] ?? 0)
    const n = seenTypes.get(shape) ?? 0
    if (n >= max / 8) return
    seenTypes.set(shape, n + 1)
    list.push(bytes)
  }
  const nodes = [sim.addNode({ name: 'corpus-0', address: 'sim:corpus-0' })]
  for (let i = 1; i < 6; i++) nodes.push(sim.addNode({ name: `corpus-${i}`, address: `sim:corpus-${i}`, seeds: ['sim:corpus-0'] }))
  sim.runFor(3 * SECOND)
  for (let i = 0; i < 40; i++) sim.set(nodes[i % 6]!, `key/${i % 15}`, `value-${i}`, i % 7 === 0 ? { ttlMs: 2000 } : undefined)
  sim.set(nodes[1]!, 'blob', new Uint8Array(20_000).fill(7))
  sim.runFor(2 * SECOND)
  sim.delete(nodes[2]!, 'key/3')
  sim.crash(nodes[5]!)
  sim.runFor(8 * SECOND)
  sim.restart(nodes[4]!)
  sim.runFor(6 * SECOND)
  sim.leave(nodes[3]!)
  sim.runFor(3 * SECOND)
  return { datagrams, streams }
}

type Mutator = (r: Random, a: Buffer, corpus: readonly Buffer[]) => Buffer

const MUTATORS: readonly [string, Mutator][] = [
  ['as-is', (_r, a) => a],
  [
    'flip',
    (r, a) => {
      const b = Buffer.from(a)
      for (let i = 1 + randomInt(r, 8); i > 0 && b.length > 0; i--) b[randomInt(r, b.length)]! ^= 1 << randomInt(r, 8)
      return b
    },
  ],
  ['truncate', (r, a) => a.subarray(0, randomInt(r, a.length + 1))],
  ['extend', (r, a) => Buffer.concat([a, randomBytes(r, 1 + randomInt(r, 64))])],
  [
    'splice',
    (r, a, corpus) => {
      const b = corpus[randomInt(r, corpus.length)]!
      return Buffer.concat([a.subarray(0, randomInt(r, a.length + 1)), b.subarray(randomInt(r, b.length + 1))])
    },
  ],
  [
    'swap-ranges',
    (r, a) => {
      if (a.length < 4) return a
      const len = 1 + randomInt(r, Math.max(1, a.length >> 2))
      const i = randomInt(r, a.length - len + 1)
      const j = randomInt(r, a.length - len + 1)
      const b = Buffer.from(a)
      a.copy(b, i, j, j + len)
      a.copy(b, j, i, i + len)
      return b
    },
  ],
  [
    'huge-varint',
    (r, a) => {
      const b = Buffer.from(a)
      const at = randomInt(r, Math.max(1, b.length))
      const huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]
      for (let k = 0; k < huge.length && at + k < b.length; k++) b[at + k] = huge[k]!
      return b
    },
  ],
  [
    'repeat-range',
    (r, a) => {
      if (a.length === 0) return a
      const i = randomInt(r, a.length)
      const len = 1 + randomInt(r, Math.min(64, a.length - i))
      return Buffer.concat([a.subarray(0, i + len), a.subarray(i, i + len), a.subarray(i + len)])
    },
  ],
  ['random', (r) => randomBytes(r, randomInt(r, 1500))],
]

function randomBytes(r: Random, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = randomInt(r, 256)
  return b
}

export interface FuzzReport {
  readonly inputs: number
  readonly byMutator: Record<string, number>
  /** Drops counted by the victim's engine, by reason. */
  readonly drops: Partial<Record<DropReason, number>>
  /** Live peers the victim knew of after the fuzzing (fake names included). */
  readonly victimMembers: number
  readonly victimMemberNames: string[]
  readonly heapGrowthBytes: number
  /** Virtual ms the cluster took to converge after the fuzzing stopped; undefined if it did not. */
  readonly convergedAfterMs: number | undefined
  readonly wallMs: number
}

export interface FuzzOptions {
  readonly seed: number
  readonly inputs: number
  /** Inputs between two 20 ms steps of the cluster. */
  readonly inputsPerStep?: number
  readonly encryption?: { readonly keys: readonly string[] }
  /** Called for each input just before it is fed (to report the one that threw). */
  readonly onInput?: (index: number, mutator: string, bytes: Buffer) => void
  readonly gc?: () => void
}

/**
 * Feeds `inputs` hostile inputs to node 2 of a 5-node cluster (datagrams,
 * and one in ten as a stream), interleaved with the cluster's own traffic,
 * then lets the cluster run and reports. An exception out of the receive
 * path propagates to the caller.
 */
export function fuzzCluster(options: FuzzOptions): FuzzReport {
  const t0 = performance.now()
  const corpus = captureCorpus(options.seed, 3000, options.encryption)
  const all = [...corpus.datagrams, ...corpus.streams]
  const r = new SeededRandom(options.seed ^ 0x5eed)
  const sim = new Simulation({ seed: options.seed + 1, ...(options.encryption ? { encryption: options.encryption } : {}) })
  const nodes: SimNode[] = [sim.addNode({ name: 'n0' })]
  for (let i = 1; i < 5; i++) nodes.push(sim.addNode({ name: `n${i}` }))
  sim.runFor(3 * SECOND)
  for (let i = 0; i < 20; i++) sim.set(nodes[i % 5]!, `base/${i}`, `v${i}`)
  sim.runFor(2 * SECOND)
  const victim = nodes[2]!
  options.gc?.()
  const heapBefore = process.memoryUsage().heapUsed
  const byMutator: Record<string, number> = {}
  const perStep = options.inputsPerStep ?? 500
  for (let i = 0; i < options.inputs; i++) {
    const [name, mutate] = MUTATORS[randomInt(r, MUTATORS.length)]!
    const stream = randomInt(r, 10) === 0
    const source = stream && corpus.streams.length > 0 ? corpus.streams : corpus.datagrams
    const bytes = mutate(r, source[randomInt(r, source.length)]!, all)
    byMutator[name] = (byMutator[name] ?? 0) + 1
    options.onInput?.(i, name, bytes)
    // A sender address of its own, or a real member's (spoofed).
    const from = randomInt(r, 4) === 0 ? nodes[randomInt(r, 5)]!.address : `sim:evil-${randomInt(r, 50)}`
    sim.inject(victim, from, bytes, stream)
    if (i % perStep === perStep - 1) {
      sim.runFor(20)
      // Now and then a real write, so convergence is about live data.
      if (i % (perStep * 20) === perStep * 20 - 1) sim.set(nodes[randomInt(r, 5)]!, `during/${i}`, String(i))
    }
  }
  options.gc?.()
  const heapGrowthBytes = process.memoryUsage().heapUsed - heapBefore
  // The hostile sender stops; the real nodes must agree again on their state and on each other.
  const real = new Set(nodes.map((n) => n.name))
  const agreed = (): boolean =>
    sim.converged() &&
    nodes.every((n) => n.engine.membership.list().filter((m) => real.has(m.member.name) && m.member.status === MemberStatus.Alive).length === 5)
  const convergedAfterMs = sim.runUntilTrue(agreed, 60 * SECOND, 200)
  const drops: Partial<Record<DropReason, number>> = {}
  for (const [reason, n] of victim.engine.stats.drops) drops[reason] = n
  return {
    inputs: options.inputs,
    byMutator,
    drops,
    victimMembers: victim.engine.membership.list().length,
    victimMemberNames: victim.engine.membership.list().map((m) => m.member.name),
    heapGrowthBytes,
    convergedAfterMs,
    wallMs: performance.now() - t0,
  }
}
