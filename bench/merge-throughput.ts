/**
 * Raw merge speed of one node, outside the simulator.
 *
 * - `ClusterState.merge` of small entries (keys of 9 characters, values of 9):
 *   distinct keys (every merge inserts), overwrites (every merge replaces the
 *   version held for one of a few keys) and duplicates (every merge is stale:
 *   the version is already held). Changes are drained every 1,024 merges, as
 *   the drivers drain them after every message.
 * - `GossipEngine.receive` of `Delta` datagrams (about 1,300 bytes each): the
 *   full path a datagram takes, decoding, checks, merge, watermark.
 *
 * Each figure is the best of `reps` runs on a fresh state.
 */
import { encodeMessage, entryBodySize, MessageType } from '../src/codec/messages.js'
import { engineConfig } from '../src/engine/config.js'
import { GossipEngine } from '../src/engine/engine.js'
import { DEFAULT_SIM_START_MS } from '../src/sim/simulation.js'
import { ClusterState } from '../src/state/cluster-state.js'
import type { Entry } from '../src/state/entry.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'
import { SeededRandom } from '../src/util/random.js'
import { type MergeResult, type MergeTask, progress } from './common.js'

const ORIGINS = 16
const NOW = DEFAULT_SIM_START_MS
const RETENTION_MS = 24 * 60 * 60 * 1000

function originName(i: number): string {
  return `node-${i % ORIGINS}~1`
}

/** Small entries with rising timestamps per origin; key i % keySpace. */
function makeEntries(count: number, keySpace: number): Entry[] {
  const base = hlcFromPhysicalMs(NOW - 60_000)
  const out: Entry[] = new Array<Entry>(count)
  for (let i = 0; i < count; i++) {
    const k = i % keySpace
    out[i] = {
      key: `k${k.toString().padStart(8, '0')}`,
      value: `v${i.toString().padStart(8, '0')}`,
      ts: base + i,
      origin: originName(i),
      expiresAt: undefined,
    }
  }
  return out
}

/** Merges all entries into `state`, draining changes as a driver would; returns entries per second. */
function mergeAll(state: ClusterState, entries: readonly Entry[]): number {
  const t0 = performance.now()
  for (let i = 0; i < entries.length; i++) {
    state.merge(entries[i]!, NOW)
    if ((i & 1023) === 1023) state.takeChanges()
  }
  state.takeChanges()
  return entries.length / ((performance.now() - t0) / 1000)
}

const gc = (globalThis as { gc?: () => void }).gc

/** Best of `reps` runs, each started after a full collection (the worker runs with --expose-gc). */
function best(reps: number, run: () => number): number {
  let b = 0
  for (let r = 0; r < reps; r++) {
    gc?.()
    b = Math.max(b, run())
  }
  return b
}

interface EncodedDeltas {
  readonly messages: Buffer[]
  readonly entries: number
  readonly bytes: number
}

/** Delta datagrams of one origin each (round robin), filled to about 1,300 bytes, sender 'tx'. */
function makeDeltas(count: number): EncodedDeltas {
  const header = { label: '', from: 'tx', fromAddress: 'sim:tx' }
  const base = hlcFromPhysicalMs(NOW - 60_000)
  const nextTs = new Array<number>(ORIGINS).fill(base)
  const messages: Buffer[] = []
  let entries = 0
  let bytes = 0
  let key = 0
  for (let m = 0; m < count; m++) {
    const o = m % ORIGINS
    const origin = `node-${o}~1`
    const seg: Entry[] = []
    // Header, segment count, origin, upTo and entry count: under 40 bytes.
    let size = 40
    for (;;) {
      const ts = nextTs[o]! + 1
      const e: Entry = { key: `d${(key++).toString().padStart(8, '0')}`, value: `v${ts % 1e8}`, ts, origin, expiresAt: undefined }
      size += entryBodySize(e)
      if (size > 1300) break
      seg.push(e)
      nextTs[o] = ts
    }
    const encoded = encodeMessage({ ...header, type: MessageType.Delta, segments: [{ origin, upTo: nextTs[o]!, entries: seg }] })
    messages.push(encoded)
    entries += seg.length
    bytes += encoded.length
  }
  return { messages, entries, bytes }
}

function receiveAll(deltas: EncodedDeltas): number {
  const config = engineConfig({ name: 'rx', address: 'sim:rx', generation: 1, tombstoneRetentionMs: RETENTION_MS })
  const engine = new GossipEngine(config, new SeededRandom(1), NOW)
  const before = engine.stats.entriesApplied
  const t0 = performance.now()
  for (const bytes of deltas.messages) {
    engine.receive(NOW, 'sim:tx', bytes, false)
    engine.takeChanges()
    engine.takeOutbox()
  }
  const secs = (performance.now() - t0) / 1000
  const applied = engine.stats.entriesApplied - before
  if (applied !== deltas.entries) throw new Error(`delta bench: applied ${applied} of ${deltas.entries} entries`)
  return deltas.messages.length / secs
}

export function runMerge(task: MergeTask): MergeResult {
  // Each scenario's entries exist only while it runs: extra live objects slow
  // every major collection and would understate the merge rate.
  let distinct: Entry[] | undefined = makeEntries(task.entries, task.entries)
  // The ceiling first, on a clean heap: a bare Map.set of the same keys.
  const mapBaselinePerSec = best(task.reps, () => {
    const map = new Map<string, object>()
    const t0 = performance.now()
    for (const e of distinct!) map.set(e.key, { entry: e, live: true, vHi: 0, vLo: 0, cHi: 0, cLo: 0 })
    return distinct!.length / ((performance.now() - t0) / 1000)
  })
  progress(`  Map.set baseline: ${(mapBaselinePerSec / 1e6).toFixed(2)} M/s`)
  let filled: ClusterState | undefined
  const distinctPerSec = best(task.reps, () => {
    filled = undefined
    gc?.()
    filled = new ClusterState(RETENTION_MS)
    return mergeAll(filled, distinct!)
  })
  progress(`  merge distinct: ${(distinctPerSec / 1e6).toFixed(2)} M/s`)
  const stalePerSec = best(task.reps, () => mergeAll(filled!, distinct!))
  progress(`  merge stale: ${(stalePerSec / 1e6).toFixed(2)} M/s`)
  filled = undefined
  distinct = undefined
  const overwrites = makeEntries(task.entries, task.overwriteKeys)
  const overwritePerSec = best(task.reps, () => mergeAll(new ClusterState(RETENTION_MS), overwrites))
  progress(`  merge overwrite: ${(overwritePerSec / 1e6).toFixed(2)} M/s`)
  const deltas = makeDeltas(task.deltaMessages)
  const deltaMessagesPerSec = best(task.reps, () => receiveAll(deltas))
  const entriesPerDelta = deltas.entries / deltas.messages.length
  progress(`  delta receive: ${Math.round(deltaMessagesPerSec)} msg/s, ${entriesPerDelta.toFixed(1)} entries each`)
  return {
    kind: 'merge',
    entries: task.entries,
    distinctPerSec,
    overwritePerSec,
    stalePerSec,
    mapBaselinePerSec,
    overwriteKeys: task.overwriteKeys,
    deltaMessagesPerSec,
    deltaEntriesPerSec: deltaMessagesPerSec * entriesPerDelta,
    entriesPerDelta,
    deltaBytes: deltas.bytes / deltas.messages.length,
    reps: task.reps,
  }
}
