/**
 * A flood of made-up members (issue 14, finding 9): 20,000 alive records
 * from 625 sources (32 per datagram, each source within its admission
 * budget) injected into one node of a simulated three-node cluster, then 2 s
 * of gossip. Prints the wall time of each part: the broadcast queue must
 * cost O(log n) per operation, so neither part grows with the queue.
 *
 *   node dist/bench/member-flood.js              # this build
 *   node dist/bench/member-flood.js /other/dist  # another build, for a ratio on the same machine
 */
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const dist = process.argv[2] ?? path.join(here, '..')
const load = async <T>(file: string): Promise<T> => (await import(pathToFileURL(path.join(dist, file)).href)) as T

type SimModule = typeof import('../src/sim/simulation.js')
type CodecModule = typeof import('../src/codec/messages.js')
type MemberModule = typeof import('../src/membership/member.js')
const { Simulation } = await load<SimModule>('src/sim/simulation.js')
const { encodeMessage, MessageType } = await load<CodecModule>('src/codec/messages.js')
const { aliveUpdate, NO_TAGS } = await load<MemberModule>('src/membership/member.js')

const sim = new Simulation({ seed: 1 })
const nodes = sim.addCluster(3)
sim.runFor(2000)
const victim = nodes[0]!
const t0 = performance.now()
for (let b = 0; b < 625; b++) {
  const updates = Array.from({ length: 32 }, (_, i) => aliveUpdate({ name: `fake-${b}-${i}`, address: `sim:f${b}-${i}`, generation: 1, incarnation: 1, tags: NO_TAGS }))
  const bytes = encodeMessage({ label: '', from: `src-${b}`, fromAddress: `sim:src-${b}`, type: MessageType.MemberGossip, updates })
  sim.inject(victim, `sim:src-${b}`, bytes, false)
}
sim.runFor(10)
const t1 = performance.now()
sim.runFor(2000)
const t2 = performance.now()
console.log(JSON.stringify({ members: victim.engine.membership.list().length, floodMs: Math.round(t1 - t0), gossip2sMs: Math.round(t2 - t1) }))
