/**
 * Packets per second one node handles: every node of a simulated cluster
 * (the production engine, real codec) is timed around what it does per
 * packet received: open it (sealed mode), `engine.receive` (decode, checks,
 * merge, membership, answers encoded), and seal the answers. The traffic is
 * the cluster's own: anti-entropy, probes, pushes, writes at a steady rate.
 * The same seed runs plaintext, then sealed, in the same process, so the
 * ratio of the two is the cost of encryption.
 */
import { Simulation, type SimNode } from '../src/sim/simulation.js'
import { type PacketRateMode, type PacketRateResult, type PacketRateTask, progress } from './common.js'

const KEY = 'q8S4VOf4U5ir0Qd8s6r2l6X5H3mJzYb1cF6T2nKp0Ws='

function measure(task: PacketRateTask, sealed: boolean): PacketRateMode {
  const sim = new Simulation({ seed: task.seed, ...(sealed ? { encryption: { keys: [KEY] } } : {}) })
  const nodes = sim.addCluster(task.n)
  sim.runFor(3000)
  let handleMs = 0
  let packets = 0
  let bytes = 0
  const timed = (node: SimNode): void => {
    const engine = node.engine
    const receive = engine.receive.bind(engine)
    engine.receive = (now, from, b, stream) => {
      const t0 = performance.now()
      receive(now, from, b, stream)
      handleMs += performance.now() - t0
    }
    const security = node.security
    if (security !== undefined) {
      const incoming = security.incoming.bind(security)
      const outgoing = security.outgoing.bind(security)
      security.incoming = (b, max) => {
        const t0 = performance.now()
        const r = incoming(b, max)
        handleMs += performance.now() - t0
        return r
      }
      security.outgoing = (b) => {
        const t0 = performance.now()
        const r = outgoing(b)
        handleMs += performance.now() - t0
        return r
      }
    }
  }
  nodes.forEach(timed)
  sim.onDeliver = (_from, _to, b) => {
    packets++
    bytes += b.length
  }
  const writes = Math.round((task.writesPerSec * task.simMs) / 1000)
  const t0 = sim.now
  for (let i = 0; i < writes; i++) {
    sim.at(t0 + (i * 1000) / task.writesPerSec, () => sim.set(nodes[i % nodes.length]!, `key/${i % 500}`, `value-${i}`))
  }
  sim.runFor(task.simMs)
  const mode = { packets, handleMs, packetsPerSec: packets / (handleMs / 1000), bytesPerPacket: bytes / packets }
  progress(`  packet rate ${sealed ? 'sealed' : 'plain'}: ${Math.round(mode.packetsPerSec)} packets/s (${packets} packets, ${mode.bytesPerPacket.toFixed(0)} B each)`)
  return mode
}

export function runPacketRate(task: PacketRateTask): PacketRateResult {
  const plain = measure(task, false)
  const sealed = measure(task, true)
  return { kind: 'packet-rate', n: task.n, simMs: task.simMs, writesPerSec: task.writesPerSec, plain, sealed }
}
