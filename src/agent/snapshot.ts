import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { DEFAULT_LIMITS } from '../codec/limits.js'
import { MessageType, decodeMessage, encodeParts } from '../codec/messages.js'
import type { StateSnapshot } from '../engine/engine.js'
import { GrapevineError } from '../errors.js'
import type { Member } from '../node.js'
import { writeFileAtomic } from './atomic-file.js'

/**
 * The data dir's snapshot (`<data-dir>/snapshot.bin`): the key space with
 * tombstones, watermarks and gc floors, our incarnation and the members we
 * knew, so a restarted agent keeps its data and rejoins without seeds.
 *
 *   "GVSNAP01" | u32 meta length | meta JSON | u32 state length | state | SHA-256 of all before it
 *
 * `state` is a `Reset` message in the wire format (PROTOCOL.md), so the
 * snapshot reuses the bounded decoder. The digest makes any corruption (a
 * torn write that escaped the atomic rename, a disk error, an edit) a clear
 * refusal instead of a silent partial load.
 */
const MAGIC = Buffer.from('GVSNAP01')
const DIGEST_BYTES = 32
export const SNAPSHOT_FILE = 'snapshot.bin'

export interface SnapshotMeta {
  readonly format: 1
  readonly name: string
  readonly label: string
  /** When it was written (ms since the epoch): its age decides whether it is trusted. */
  readonly savedAtMs: number
  readonly incarnation: number
  readonly members: readonly { readonly name: string; readonly address: string; readonly status: string }[]
}

export interface Snapshot {
  readonly meta: SnapshotMeta
  readonly state: StateSnapshot
}

/** A snapshot that cannot be used; the agent stops and names the flag that discards it. */
export class SnapshotError extends GrapevineError {
  constructor(file: string, why: string) {
    super(
      'GV_ERR_SNAPSHOT',
      `the snapshot ${file} cannot be loaded: ${why}. Nothing was changed. Start with --discard-snapshot to move it aside and start with an empty state (the cluster gives back what it holds).`,
    )
    this.name = 'SnapshotError'
  }
}

export function snapshotPath(dataDir: string): string {
  return path.join(dataDir, SNAPSHOT_FILE)
}

export function writeSnapshot(dataDir: string, s: { name: string; label: string; incarnation: number; members: Member[]; state: StateSnapshot }, nowMs: number): number {
  const meta: SnapshotMeta = {
    format: 1,
    name: s.name,
    label: s.label,
    savedAtMs: nowMs,
    incarnation: s.incarnation,
    members: s.members.map((m) => ({ name: m.name, address: m.address, status: m.status })),
  }
  const metaBytes = Buffer.from(JSON.stringify(meta))
  const state = encodeParts(
    { label: s.label, from: s.name, fromAddress: '' },
    { type: MessageType.Reset, watermarks: s.state.watermarks, gcFloors: s.state.gcFloors, entries: s.state.entries },
  )
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n, 0)
    return b
  }
  const body = Buffer.concat([MAGIC, u32(metaBytes.length), metaBytes, u32(state.length), state])
  const digest = createHash('sha256').update(body).digest()
  const all = Buffer.concat([body, digest])
  writeFileAtomic(snapshotPath(dataDir), all, 0o600)
  return all.length
}

/** The data dir's snapshot, or undefined when there is none. Throws SnapshotError when it is unusable. */
export function readSnapshot(dataDir: string, expect: { name: string; label: string }): Snapshot | undefined {
  const file = snapshotPath(dataDir)
  if (!existsSync(file)) return undefined
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch (err) {
    throw new SnapshotError(file, `it cannot be read (${(err as Error).message})`)
  }
  if (bytes.length < MAGIC.length + 8 + DIGEST_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotError(file, 'it is not a grapevine snapshot (bad header)')
  }
  const body = bytes.subarray(0, bytes.length - DIGEST_BYTES)
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - DIGEST_BYTES))) {
    throw new SnapshotError(file, 'its checksum does not match (corrupt or truncated)')
  }
  let at = MAGIC.length
  const metaLength = body.readUInt32BE(at)
  at += 4
  if (at + metaLength + 4 > body.length) throw new SnapshotError(file, 'its metadata length is out of range')
  let meta: SnapshotMeta
  try {
    meta = JSON.parse(body.toString('utf8', at, at + metaLength)) as SnapshotMeta
  } catch {
    throw new SnapshotError(file, 'its metadata is not JSON')
  }
  at += metaLength
  if (meta.format !== 1) throw new SnapshotError(file, `it has format ${String(meta.format)}, this version reads format 1`)
  if (meta.name !== expect.name) throw new SnapshotError(file, `it belongs to node '${meta.name}', not '${expect.name}'`)
  if (meta.label !== expect.label) throw new SnapshotError(file, `it belongs to cluster label '${meta.label}', not '${expect.label}'`)
  const stateLength = body.readUInt32BE(at)
  at += 4
  if (at + stateLength !== body.length) throw new SnapshotError(file, 'its state length is out of range')
  const stateBytes = body.subarray(at)
  let msg
  try {
    // The file's own size bounds what it can hold; the item limit must not cap a large state.
    msg = decodeMessage(stateBytes, { ...DEFAULT_LIMITS, maxItemsPerMessage: Number.MAX_SAFE_INTEGER, maxStreamBytes: stateBytes.length }, stateBytes.length)
  } catch (err) {
    throw new SnapshotError(file, `its state does not decode (${(err as Error).message})`)
  }
  if (msg.type !== MessageType.Reset) throw new SnapshotError(file, 'its state is not a state transfer')
  return { meta, state: { entries: msg.entries, watermarks: msg.watermarks, gcFloors: msg.gcFloors } }
}
