/**
 * A node holding many keys: its memory per key, and a new node joining it.
 *
 * Memory is the V8 heap growth (process.memoryUsage().heapUsed after a full
 * collection; the worker runs with --expose-gc) divided by the keys, for:
 * - a node that wrote the keys itself (GossipEngine.set), and
 * - a node that received them (one Delta stream message, as a joining node does).
 * Key and value strings are created inside the measured region, so their own
 * size is included.
 *
 * The join runs in the simulator: node A is filled, then node B joins with A
 * as its seed; measured until B holds every key (virtual and wall time). The
 * simulated network has latency but no bandwidth limit, so the virtual time is
 * the protocol's round trips; the wall time is what encoding, decoding and
 * merging the keys costs in this process.
 */
import { encodeMessage, MessageType } from '../src/codec/messages.js'
import { engineConfig } from '../src/engine/config.js'
import { GossipEngine } from '../src/engine/engine.js'
import { DEFAULT_SIM_START_MS, Simulation } from '../src/sim/simulation.js'
import { SeededRandom } from '../src/util/random.js'
import { INTERVAL_MS, type JoinResult, type JoinTask, type MemoryResult, type MemoryTask, progress } from './common.js'

const NOW = DEFAULT_SIM_START_MS

/** 10-character keys and values (below V8's 13-character cons-string threshold, so flat strings). */
function keyOf(i: number): string {
  return `key-${i.toString().padStart(6, '0')}`
}
function valueOf(i: number): string {
  return `val-${i.toString().padStart(6, '0')}`
}

const gc = (globalThis as { gc?: () => void }).gc

function collect(): void {
  if (gc === undefined) return
  for (let i = 0; i < 3; i++) gc()
}

function newEngine(name: string): GossipEngine {
  return new GossipEngine(engineConfig({ name, address: `sim:${name}`, generation: 1 }), new SeededRandom(1), NOW)
}

/** Writes `keys` keys on one engine (one write per 10 µs of virtual time). */
function fill(engine: GossipEngine, keys: number): void {
  for (let i = 0; i < keys; i++) {
    engine.set(NOW + Math.floor(i / 100), keyOf(i), valueOf(i))
    if ((i & 1023) === 1023) {
      engine.takeChanges()
      engine.takeOutbox()
    }
  }
  engine.takeChanges()
  engine.takeOutbox()
}

export function runMemory(task: MemoryTask): MemoryResult {
  collect()
  const h0 = process.memoryUsage().heapUsed
  const r0 = process.memoryUsage().rss
  const writer = newEngine('writer')
  fill(writer, task.keys)
  collect()
  const h1 = process.memoryUsage().heapUsed
  const r1 = process.memoryUsage().rss
  if (writer.state.size !== task.keys) throw new Error(`memory bench: ${writer.state.size} keys held`)
  const writtenPerKey = (h1 - h0) / task.keys
  progress(`  memory: ${writtenPerKey.toFixed(0)} heap bytes per key written`)

  // The same keys received in one Delta stream message.
  const header = { label: '', from: 'writer', fromAddress: 'sim:writer' }
  let message: Buffer | undefined = encodeMessage({
    ...header,
    type: MessageType.Delta,
    segments: [{ origin: writer.origin, upTo: writer.state.watermark(writer.origin), entries: [...writer.state.entriesAfter(writer.origin, 0)] }],
  })
  collect()
  const h2 = process.memoryUsage().heapUsed
  const receiver = newEngine('receiver')
  receiver.receive(NOW + task.keys, 'sim:writer', message, true)
  receiver.takeChanges()
  receiver.takeOutbox()
  message = undefined
  collect()
  const h3 = process.memoryUsage().heapUsed
  if (receiver.state.size !== task.keys) throw new Error(`memory bench: receiver holds ${receiver.state.size} keys`)
  const receivedPerKey = (h3 - h2) / task.keys
  progress(`  memory: ${receivedPerKey.toFixed(0)} heap bytes per key received`)
  return {
    kind: 'memory',
    keys: task.keys,
    keyBytes: keyOf(0).length,
    valueBytes: valueOf(0).length,
    heapBytesPerKey: writtenPerKey,
    receivedHeapBytesPerKey: receivedPerKey,
    rssBytesPerKey: (r1 - r0) / task.keys,
    gcExposed: gc !== undefined,
  }
}

export function runJoin(task: JoinTask): JoinResult {
  const sim = new Simulation({ seed: task.seed })
  sim.network.faults.minLatencyMs = 1
  sim.network.faults.maxLatencyMs = 1
  const a = sim.addNode({ name: 'holder' })
  const fill0 = performance.now()
  for (let i = 0; i < task.keys; i++) {
    sim.set(a, keyOf(i), valueOf(i))
    if (i % 1000 === 999) sim.runFor(1)
  }
  sim.runFor(2 * INTERVAL_MS)
  const fillWallMs = performance.now() - fill0
  progress(`  join: holder filled with ${task.keys} keys in ${(fillWallMs / 1000).toFixed(1)} s wall`)
  const before = sim.network.traffic.map((t) => ({ ...t }))
  const b = sim.addNode({ name: 'joiner', seeds: [a.address] })
  let count = 0
  let last = 0
  sim.onChange = (node, change, now) => {
    if (node !== b || change.value === undefined) return
    count++
    last = now
  }
  const t0 = sim.now
  const wall0 = performance.now()
  while (count < task.keys && sim.now - t0 < 120 * INTERVAL_MS) sim.runFor(50)
  const wallMs = performance.now() - wall0
  let streamBytes = 0
  let streams = 0
  let datagrams = 0
  sim.network.traffic.forEach((t, i) => {
    const p = before[i]
    streamBytes += t.streamBytesOut - (p?.streamBytesOut ?? 0)
    streams += t.streamsOut - (p?.streamsOut ?? 0)
    datagrams += t.datagramsOut - (p?.datagramsOut ?? 0)
  })
  const result: JoinResult = {
    kind: 'join',
    keys: task.keys,
    virtualMs: count === task.keys ? last - t0 : null,
    wallMs,
    fillWallMs,
    streamBytes,
    streams,
    datagrams,
    converged: sim.converged(),
  }
  progress(`  join: ${count}/${task.keys} keys after ${result.virtualMs} virtual ms, ${(wallMs / 1000).toFixed(2)} s wall`)
  return result
}
