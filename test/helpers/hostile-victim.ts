/**
 * A victim node for the hostile-peer suite, in its own process (so a crash
 * in its receive path fails one case, not the test run):
 * `node hostile-victim.js NAME SEED_ADDRESS HOST` (an empty seed for the
 * first node; HOST the loopback address it binds, one per victim so that the
 * attacker on 127.0.0.1 is on none of the members' hosts), forked with an IPC
 * channel.
 *
 * Sends `{ ready, name, address, origin }` once started and answers
 * `{ id, op }` requests: `set` (key, value), `drops` (drop counters,
 * message counts, stream refusals and RSS, cheap), `memory` (RSS, heap,
 * keys held and their bytes) and `status` (also the keys under `honest/` and
 * `probe/`, the real members as it sees them, the member count, RSS). An
 * uncaught exception is written to stderr (synchronous on a pipe) and the
 * process exits with 70.
 */
import { Grapevine } from '../../src/index.js'

process.on('uncaughtException', (err) => {
  process.stderr.write(`UNCAUGHT ${err.stack ?? String(err)}\n`)
  process.exit(70)
})

const [name, seed, host] = process.argv.slice(2)
const node = await Grapevine.start({
  name: name!,
  bind: `${host ?? '127.0.0.1'}:0`,
  seeds: seed !== undefined && seed !== '' ? [seed] : [],
  preset: 'local',
  gossipIntervalMs: 100,
  fanout: 2,
  joinTimeoutMs: 5000,
})
node.on('error', () => undefined)
node.on('warning', () => undefined)
node.on('conflict', () => undefined)
node.set(`honest/${name}/origin`, name!)
const origin = [...node.persistentState().snapshot.watermarks.keys()].find((o) => o.startsWith(`${name}~`)) ?? ''

function drops(): Record<string, unknown> {
  const s = node.stats
  return { drops: Object.fromEntries(s.drops), messagesIn: s.messagesIn, streamsIn: s.streamsIn, refusals: Object.fromEntries(node.streamRefusalsByReason), rss: process.memoryUsage().rss }
}

function status(): Record<string, unknown> {
  const members = node.members()
  const real = members.filter((m) => m.name.startsWith('victim-')).map((m) => ({ name: m.name, status: m.status, address: m.address, incarnation: m.incarnation }))
  const entries: Record<string, string> = {}
  for (const kv of node.entries({ prefix: 'honest/' })) entries[kv.key] = String(kv.value)
  for (const kv of node.entries({ prefix: 'probe/' })) entries[kv.key] = String(kv.value)
  return { ...drops(), entries, real, memberCount: members.length, incarnation: node.persistentState().incarnation, rss: process.memoryUsage().rss }
}

process.on('message', (m: { id: number; op: string; key?: string; value?: string }) => {
  let result: unknown
  try {
    if (m.op === 'set') result = node.set(m.key!, m.value!)
    else if (m.op === 'drops') result = drops()
    else if (m.op === 'status') result = status()
    else if (m.op === 'memory') {
      // What the victim holds (the attacker's writes are data: plaintext lets anyone write) against what the process takes.
      let valueBytes = 0
      for (const kv of node.entries()) valueBytes += kv.key.length + (typeof kv.value === 'string' ? Buffer.byteLength(kv.value) : kv.value.length)
      result = { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, ...node.storeCounts, valueBytes }
    }
    else if (m.op === 'stop') {
      void node.stop().then(() => process.exit(0))
      return
    }
    process.send!({ id: m.id, ok: true, result })
  } catch (err) {
    process.send!({ id: m.id, ok: false, error: String(err) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send!({ ready: true, name, address: node.address, origin })
