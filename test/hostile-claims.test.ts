/**
 * Well-formed messages with hostile values, each one of issue 14's findings
 * against the engine and the codec: unusable addresses, incarnations far
 * above the clock, TTLs past their field, item counts spread over many
 * lists, floods of made-up members, a handler that throws. Each test fails
 * on the code before the fix (said at each test).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Reader, Writer } from '../src/codec/bytes.js'
import { DEFAULT_LIMITS, MAX_TTL_MS } from '../src/codec/limits.js'
import { type Message, MessageType, decodeMessage, encodeMessage } from '../src/codec/messages.js'
import { DecodeError, InvalidTtlError } from '../src/errors.js'
import { INCARNATION_HEADROOM, MemberStatus, NO_TAGS, aliveUpdate, claimUpdate, incarnationCeiling } from '../src/membership/member.js'
import { isUsableInetAddress } from '../src/runtime/address.js'
import { Simulation } from '../src/sim/simulation.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'

const SECOND = 1000
const L = DEFAULT_LIMITS

function decodeInet(m: Message): Message {
  return decodeMessage(encodeMessage(m), L, L.maxStreamBytes, isUsableInetAddress)
}

function dropReason(f: () => unknown): string | undefined {
  try {
    f()
    return undefined
  } catch (err) {
    if (err instanceof DecodeError) return err.reason
    throw err
  }
}

describe('unusable addresses are refused at decode (a datagram to port 0 throws in node:dgram)', () => {
  test('the real network rule', () => {
    for (const ok of ['127.0.0.1:7946', '[::1]:1', 'node-1.example:65535', '10.0.0.7:8080']) assert.ok(isUsableInetAddress(ok), ok)
    for (const bad of ['127.0.0.1:0', '[::1]:0', '0.0.0.0:7946', '[::]:7946', '127.0.0.1:65536', '127.0.0.1', '127.0.0.1:', ':7946', 'a b:1', '::1:7946', '[x]:1', '127.0.0.1:-1', '']) {
      assert.ok(!isUsableInetAddress(bad), bad)
    }
  })

  test('reply address, PingReq target and alive member address at port 0: malformed (before: accepted, and the node crashed)', () => {
    const base = { label: '', from: 'attacker', fromAddress: '' }
    assert.equal(dropReason(() => decodeInet({ ...base, fromAddress: '127.0.0.1:0', type: MessageType.Ping, seq: 1, target: 'v', updates: [] })), 'malformed')
    assert.equal(
      dropReason(() => decodeInet({ ...base, type: MessageType.PingReq, seq: 1, target: 'v', targetAddress: '127.0.0.1:0', updates: [] })),
      'malformed',
    )
    const alive = aliveUpdate({ name: 'ghost', address: '127.0.0.1:0', generation: 1, incarnation: 1, tags: NO_TAGS })
    assert.equal(dropReason(() => decodeInet({ ...base, type: MessageType.MemberGossip, updates: [alive] })), 'malformed')
    // An empty reply address still means "the transport source".
    assert.doesNotThrow(() => decodeInet({ ...base, type: MessageType.Ping, seq: 1, target: 'v', updates: [] }))
  })
})

describe('incarnations far above the clock (before: a claim at 2^52 made the refutation unencodable; the member stayed dead)', () => {
  test('a suspect claim beyond the ceiling is refused and the victim stays alive everywhere', () => {
    const sim = new Simulation({ seed: 5 })
    const nodes = sim.addCluster(4)
    sim.runFor(3 * SECOND)
    const [a, victim] = [nodes[0]!, nodes[1]!]
    for (const inc of [2 ** 52, incarnationCeiling(sim.now) + 1, Number.MAX_SAFE_INTEGER]) {
      const m: Message = { label: '', from: nodes[2]!.name, fromAddress: nodes[2]!.address, type: MessageType.MemberGossip, updates: [claimUpdate(MemberStatus.Dead, victim.name, inc, nodes[2]!.name)] }
      sim.inject(a, nodes[2]!.address, encodeMessage(m), false)
    }
    sim.runFor(20 * SECOND)
    assert.equal(a.engine.stats.dropped('claim-refused'), 3)
    for (const n of nodes) assert.equal(n.engine.membership.get(victim.name)?.status, MemberStatus.Alive, `${n.name} sees the victim alive`)
  })

  test('a claim just under the ceiling is refuted: the refutation encodes, decodes and is taken by every node', () => {
    const sim = new Simulation({ seed: 6 })
    const nodes = sim.addCluster(4)
    sim.runFor(3 * SECOND)
    const victim = nodes[1]!
    const inc = incarnationCeiling(sim.now) - 1
    const m: Message = { label: '', from: nodes[2]!.name, fromAddress: nodes[2]!.address, type: MessageType.MemberGossip, updates: [claimUpdate(MemberStatus.Suspect, victim.name, inc, nodes[2]!.name)] }
    for (const n of nodes) if (n !== victim) sim.inject(n, nodes[2]!.address, encodeMessage(m), false)
    sim.runFor(20 * SECOND)
    for (const n of nodes) {
      const rec = n.engine.membership.get(victim.name)
      assert.equal(rec?.status, MemberStatus.Alive, `${n.name} sees the victim alive`)
      assert.ok(rec!.incarnation > inc, 'at the refuting incarnation')
      assert.ok(rec!.incarnation <= incarnationCeiling(sim.now) + INCARNATION_HEADROOM)
    }
  })
})

describe('TTL ceiling (before: a TTL of 1e20 days wrote an expiry no peer could decode)', () => {
  test('the library refuses TTLs above MAX_TTL_MS, zero, negative and non-finite ones', () => {
    const sim = new Simulation({ seed: 7 })
    const [n] = sim.addCluster(1)
    for (const ttlMs of [MAX_TTL_MS + 1, 0, -1, Number.NaN, Number.POSITIVE_INFINITY, 8.6e27]) {
      assert.throws(() => n!.engine.set(sim.now, 'k', 'v', { ttlMs }), (e: unknown) => e instanceof InvalidTtlError && e.code === 'GV_ERR_BAD_TTL', String(ttlMs))
    }
    const v = n!.engine.set(sim.now, 'k', 'v', { ttlMs: MAX_TTL_MS })
    assert.equal(n!.engine.get(sim.now, 'k')?.ts, v.ts)
  })

  test('an expiry beyond the longest TTL is malformed on the wire; the writer never emits one', () => {
    const ts = hlcFromPhysicalMs(1_800_000_000_000)
    const entry = { key: 'k', ts, origin: 'o~1', value: 'v', expiresAt: 1_800_000_000_000 + MAX_TTL_MS }
    const push: Message = { label: '', from: 'o', fromAddress: '', type: MessageType.Push, hops: 0, prevTs: 0, entry }
    assert.deepEqual(decodeMessage(encodeMessage(push), L, L.maxPacketBytes), push)
    assert.throws(() => encodeMessage({ ...push, entry: { ...entry, expiresAt: entry.expiresAt + 1 } }), RangeError)
    // A hostile writer's bytes: the same push with the expiry one further.
    const bytes = Buffer.from(encodeMessage(push))
    const w = new Writer()
    w.varint(entry.expiresAt)
    const at = bytes.indexOf(w.finish())
    const w2 = new Writer()
    w2.varint(entry.expiresAt + 1)
    assert.equal(w2.finish().length, w.finish().length)
    w2.finish().copy(bytes, at)
    assert.equal(dropReason(() => decodeMessage(bytes, L, L.maxPacketBytes)), 'malformed')
  })

  test('the writer refuses what no reader takes: varints beyond 2^53 - 1, negative or fractional', () => {
    for (const v of [2 ** 53, -1, 1.5, Number.NaN, 8.6e27]) assert.throws(() => new Writer().varint(v), RangeError, String(v))
    const w = new Writer().varint(Number.MAX_SAFE_INTEGER).finish()
    assert.equal(new Reader(w).varint(), Number.MAX_SAFE_INTEGER)
  })
})

describe('watermark claims (before: one forged Reset emptied a node, and writes for the next 50 s never crossed)', () => {
  function formed(seed: number) {
    const sim = new Simulation({ seed })
    const nodes = sim.addCluster(3)
    sim.runFor(2 * SECOND)
    for (let i = 0; i < 6; i++) sim.set(nodes[i % 3]!, `k${i}`, `v${i}`)
    sim.runFor(3 * SECOND)
    return { sim, nodes }
  }
  const ahead = (sim: Simulation, ms: number): number => hlcFromPhysicalMs(sim.now + ms)

  test('a forged Reset with every watermark 50 s ahead and no entries deletes nothing; later writes still cross', () => {
    const { sim, nodes } = formed(11)
    const victim = nodes[0]!
    const origins = [...victim.engine.state.origins()]
    const watermarks = new Map(origins.map((o) => [o, ahead(sim, 50 * SECOND)]))
    // A real member's name, from another host: not an exchange the victim took part in.
    for (const from of [nodes[1]!.name, 'stranger']) {
      const reset: Message = { label: '', from, fromAddress: 'sim:attacker', type: MessageType.Reset, watermarks, gcFloors: new Map(), entries: [] }
      sim.inject(victim, 'sim:attacker', encodeMessage(reset), true)
    }
    sim.runFor(10)
    assert.equal(victim.engine.entries(sim.now).length, 6, 'nothing deleted')
    assert.ok(victim.engine.stats.dropped('watermark-refused') >= 2 * origins.length)
    sim.set(nodes[1]!, 'after', 'x')
    sim.set(nodes[2]!, 'k0', 'new')
    sim.runFor(5 * SECOND)
    assert.equal(victim.engine.get(sim.now, 'after')?.value, 'x')
    assert.equal(victim.engine.get(sim.now, 'k0')?.value, 'new')
    assert.ok(sim.converged())
  })

  test("a forged Delta's upTo hides no write: an unproven claim about another origin is refused", () => {
    const { sim, nodes } = formed(12)
    const victim = nodes[0]!
    const writer = nodes[1]!
    const origin = writer.engine.origin
    const delta: Message = { label: '', from: 'stranger', fromAddress: 'sim:attacker', type: MessageType.Delta, segments: [{ origin, upTo: ahead(sim, 50 * SECOND), entries: [] }] }
    sim.inject(victim, 'sim:attacker', encodeMessage(delta), false)
    sim.runFor(10)
    assert.equal(victim.engine.stats.dropped('watermark-refused'), 1)
    assert.ok(victim.engine.state.watermark(origin) < hlcFromPhysicalMs(sim.now))
    sim.set(writer, 'hidden?', 'no')
    sim.runFor(5 * SECOND)
    assert.equal(victim.engine.get(sim.now, 'hidden?')?.value, 'no')
  })

  test('a forged push dated at the drift bound with a link from nothing hides none of the origin\'s later writes', () => {
    const { sim, nodes } = formed(16)
    const [victim, writer] = [nodes[0]!, nodes[1]!]
    const entry = { key: 'forged', ts: ahead(sim, 59 * SECOND), origin: writer.engine.origin, value: 'x', expiresAt: undefined }
    // From a member at its own host (its writes are taken): the link still raises no watermark past our clock.
    const third = nodes[2]!
    const push: Message = { label: '', from: third.name, fromAddress: third.address, type: MessageType.Push, hops: 0, prevTs: 0, entry }
    sim.inject(victim, third.address, encodeMessage(push), false)
    sim.runFor(10)
    assert.equal(victim.engine.get(sim.now, 'forged')?.value, 'x')
    assert.ok(victim.engine.state.watermark(writer.engine.origin) <= hlcFromPhysicalMs(sim.now + 1))
    sim.set(writer, 'next', 'crosses')
    sim.runFor(5 * SECOND)
    assert.equal(victim.engine.get(sim.now, 'next')?.value, 'crosses')
  })

  // Before: an outsider's push or Delta carrying one forged write of a live member's origin, dated
  // now, raised the watermark over that member's writes still in flight; the digests then agreed
  // and no exchange ever brought them (the hostile-peer suite lost a fresh write this way). Now an
  // outsider's writes under a live member's origin are not taken at all (nor, so, spread unevenly).
  for (const via of ['push', 'Delta'] as const) {
    test(`a forged ${via} of a live member's origin dated now, from an outsider, hides none of its writes in flight`, () => {
      const { sim, nodes } = formed(via === 'push' ? 17 : 18)
      const [victim, writer] = [nodes[0]!, nodes[1]!]
      const origin = writer.engine.origin
      // The writer's next write is held up on its way (the writer is cut off for a moment).
      sim.network.partition((i) => (i === 1 ? 1 : 0), nodes.length)
      sim.set(writer, 'in-flight', 'arrives')
      sim.runFor(200)
      const entry = { key: 'forged', ts: hlcFromPhysicalMs(sim.now), origin, value: 'x', expiresAt: undefined }
      const msg: Message =
        via === 'push'
          ? { label: '', from: 'mallory', fromAddress: 'sim:attacker', type: MessageType.Push, hops: 0, prevTs: 0, entry }
          : { label: '', from: 'mallory', fromAddress: 'sim:attacker', type: MessageType.Delta, segments: [{ origin, upTo: entry.ts, entries: [entry] }] }
      sim.inject(victim, 'sim:attacker', encodeMessage(msg), false)
      sim.runFor(10)
      assert.equal(victim.engine.get(sim.now, 'forged'), undefined, "an outsider's write under a live member's origin is not taken")
      assert.equal(victim.engine.stats.dropped('claim-refused'), 1, 'refused and counted')
      sim.network.heal()
      sim.runFor(10 * SECOND)
      for (const n of nodes) assert.equal(n.engine.get(sim.now, 'in-flight')?.value, 'arrives', `${n.name} holds the write`)
      assert.ok(sim.converged())
    })
  }

  test('a claim beyond the clock plus the drift is refused even from a member in an exchange', () => {
    const { sim, nodes } = formed(13)
    const victim = nodes[0]!
    const peer = nodes[1]!
    const delta: Message = { label: '', from: peer.name, fromAddress: peer.address, type: MessageType.Delta, segments: [{ origin: peer.engine.origin, upTo: ahead(sim, 2 * 60 * SECOND), entries: [] }] }
    sim.inject(victim, peer.address, encodeMessage(delta), false)
    sim.runFor(10)
    assert.equal(victim.engine.stats.dropped('watermark-refused'), 1)
  })

  test('two writes of one origin at one timestamp (a forged twin) do not cut the segment and stall the origin', () => {
    const { sim, nodes } = formed(14)
    const victim = nodes[0]!
    const ts = hlcFromPhysicalMs(sim.now)
    const e = (key: string) => ({ key, ts, origin: 'ghost~1', value: key, expiresAt: undefined })
    const delta: Message = { label: '', from: 'ghost', fromAddress: 'sim:ghost', type: MessageType.Delta, segments: [{ origin: 'ghost~1', upTo: 0, entries: [e('a'), e('b'), e('c')] }] }
    sim.inject(victim, 'sim:ghost', encodeMessage(delta), false)
    sim.runFor(10)
    for (const k of ['a', 'b', 'c']) assert.equal(victim.engine.get(sim.now, k)?.value, k)
  })
})

describe("speaking for a member from another host", () => {
  test("acks naming a member, with sequence numbers it never received, do not make the sender's host the member's: its writes as that member stay refused", () => {
    const sim = new Simulation({ seed: 31 })
    const nodes = sim.addCluster(3)
    sim.runFor(3 * SECOND)
    const [victim, member] = [nodes[0]!, nodes[1]!]
    // While the member cannot answer, the victim's probes of it stay open: acks with every small
    // sequence number, again and again, would hit one if the numbers were counted up.
    sim.freeze(member, 3 * SECOND)
    for (let t = 0; t < 100; t++) {
      for (let seq = 1; seq <= 400; seq++) {
        const ack: Message = { label: '', from: member.name, fromAddress: 'sim:attacker', type: MessageType.Ack, seq, generation: 1, updates: [] }
        sim.inject(victim, 'sim:attacker', encodeMessage(ack), false)
      }
      sim.runFor(20)
    }
    assert.ok(victim.engine.membership.get(member.name)!.status <= MemberStatus.Suspect, 'the member is live')
    const entry = { key: 'as-member', ts: hlcFromPhysicalMs(sim.now), origin: member.engine.origin, value: 'x', expiresAt: undefined }
    const push: Message = { label: '', from: member.name, fromAddress: member.address, type: MessageType.Push, hops: 0, prevTs: 0, entry }
    const before = victim.engine.stats.dropped('claim-refused')
    sim.inject(victim, 'sim:attacker', encodeMessage(push), false)
    sim.runFor(10)
    assert.equal(victim.engine.get(sim.now, 'as-member'), undefined)
    assert.equal(victim.engine.stats.dropped('claim-refused'), before + 1)
  })
})

describe('claims that a member moved', () => {
  test('a third party claiming a live member moved to a dead address does not get it declared dead: the member hears the record and refutes', () => {
    // Two nodes: nobody else passes the claim on to the victim, so only the fix can tell it.
    const sim = new Simulation({ seed: 15 })
    const nodes = sim.addCluster(2)
    sim.runFor(3 * SECOND)
    const [a, victim] = [nodes[0]!, nodes[1]!]
    const cur = a.engine.membership.get(victim.name)!
    const moved = aliveUpdate({ name: victim.name, address: 'sim:nowhere', generation: cur.generation, incarnation: cur.incarnation + 1, tags: NO_TAGS })
    sim.inject(a, 'sim:attacker', encodeMessage({ label: '', from: 'mallory', fromAddress: 'sim:attacker', type: MessageType.MemberGossip, updates: [moved] }), false)
    sim.runFor(10)
    assert.equal(a.engine.membership.get(victim.name)?.address, 'sim:nowhere', 'the claim was taken (plaintext)')
    sim.runFor(30 * SECOND)
    for (const n of nodes) {
      const rec = n.engine.membership.get(victim.name)!
      assert.equal(rec.status, MemberStatus.Alive, `${n.name} sees the victim alive`)
      assert.equal(rec.address, victim.address, `${n.name} has its real address back`)
    }
  })
})

describe('made-up origins', () => {
  test('a sender that is not a member at its own host introduces at most 64 new origins per gossip interval; members are not limited', () => {
    const sim = new Simulation({ seed: 17 })
    const nodes = sim.addCluster(3)
    sim.runFor(2 * SECOND)
    const victim = nodes[0]!
    const push = (from: string, origin: string, i: number): Buffer =>
      encodeMessage({ label: '', from, fromAddress: '', type: MessageType.Push, hops: 0, prevTs: 0, entry: { key: `o/${i}`, ts: hlcFromPhysicalMs(sim.now), origin, value: 'x', expiresAt: undefined } })
    for (let i = 0; i < 200; i++) sim.inject(victim, 'sim:attacker', push('mallory', `mallory-${i}~1`, i), false)
    sim.runFor(10)
    const held = victim.engine.entries(sim.now, 'o/').length
    assert.equal(held, 64)
    assert.equal(victim.engine.stats.dropped('claim-refused'), 200 - 64)
    // A member speaking from its own host brings whatever origins it carries.
    const member = nodes[1]!
    for (let i = 200; i < 300; i++) sim.inject(victim, member.address, push(member.name, `relayed-${i}~1`, i), false)
    sim.runFor(10)
    assert.equal(victim.engine.entries(sim.now, 'o/').length, 64 + 100)
  })
})

describe('made-up origins', () => {
  test("thousands of made-up origins do not hide live members' rows from the digest pages: a write missed by its push crosses in seconds (before: half a minute)", () => {
    const sim = new Simulation({ seed: 21, engine: { eagerPush: false } })
    const nodes = sim.addCluster(3)
    sim.runFor(2 * SECOND)
    const [a, b, writer] = [nodes[0]!, nodes[1]!, nodes[2]!]
    // A member (no per-source bound applies) hands both others 3,000 origins with one write each.
    for (let k = 0; k < 3000; k += 30) {
      const segments = Array.from({ length: 30 }, (_, i) => ({
        origin: `ghost-${k + i}~1`,
        upTo: 0,
        entries: [{ key: `ghost/${k + i}`, ts: hlcFromPhysicalMs(sim.now), origin: `ghost-${k + i}~1`, value: 'g', expiresAt: undefined }],
      }))
      const m: Message = { label: '', from: writer.name, fromAddress: writer.address, type: MessageType.Delta, segments }
      for (const to of [a, b]) sim.inject(to, writer.address, encodeMessage(m), true)
    }
    sim.runFor(10 * SECOND)
    assert.ok(a.engine.state.origins().length >= 3000)
    const times: number[] = []
    for (let i = 0; i < 5; i++) {
      sim.set(writer, `fresh/${i}`, 'x')
      const took = sim.runUntilTrue(() => a.engine.get(sim.now, `fresh/${i}`) !== undefined && b.engine.get(sim.now, `fresh/${i}`) !== undefined, 120 * SECOND, 50)
      times.push(took ?? Infinity)
    }
    assert.ok(Math.max(...times) <= 10 * SECOND, `fresh writes crossed after ${times.join(', ')} ms`)
  })
})

describe('made-up members', () => {
  test('one source introduces at most 256 new members per probe interval (before: 200,000)', () => {
    const sim = new Simulation({ seed: 8 })
    const nodes = sim.addCluster(3)
    sim.runFor(2 * SECOND)
    const victim = nodes[0]!
    const before = victim.engine.membership.list().length
    for (let batch = 0; batch < 200; batch++) {
      const updates = Array.from({ length: 32 }, (_, i) =>
        aliveUpdate({ name: `fake-${batch}-${i}`, address: `sim:fake-${batch}-${i}`, generation: 1, incarnation: 1, tags: NO_TAGS }),
      )
      const m: Message = { label: '', from: 'attacker', fromAddress: 'sim:attacker', type: MessageType.MemberGossip, updates }
      sim.inject(victim, 'sim:attacker', encodeMessage(m), false)
    }
    sim.runFor(10)
    const admitted = victim.engine.membership.list().length - before
    assert.ok(admitted <= 256, `admitted ${admitted}`)
    assert.equal(victim.engine.stats.dropped('claim-refused'), 6400 - admitted)
  })

  test('a flood of made-up members does not take the gossip targets: a fresh write still crosses at once (before: tens of seconds)', () => {
    const sim = new Simulation({ seed: 9 })
    const nodes = sim.addCluster(2)
    sim.runFor(2 * SECOND)
    const [a, b] = [nodes[0]!, nodes[1]!]
    // 256 made-up members per probe interval, each at an address that never answers, to both nodes.
    for (let round = 0; round < 8; round++) {
      for (const victim of [a, b]) {
        const updates = Array.from({ length: 256 }, (_, i) =>
          aliveUpdate({ name: `fake-${round}-${i}`, address: `sim:fake-${round}-${i}`, generation: 1, incarnation: 1, tags: NO_TAGS }),
        )
        for (let k = 0; k < 256; k += 32) {
          const m: Message = { label: '', from: 'attacker', fromAddress: 'sim:attacker', type: MessageType.MemberGossip, updates: updates.slice(k, k + 32) }
          sim.inject(victim, 'sim:attacker', encodeMessage(m), false)
        }
      }
      sim.runFor(1100)
    }
    assert.ok(a.engine.membership.list().length > 1000, `made-up members held: ${a.engine.membership.list().length}`)
    for (const [from, to, key] of [[a, b, 'from-a'], [b, a, 'from-b']] as const) {
      sim.set(from, key, 'x')
      const took = sim.runUntilTrue(() => to.engine.get(sim.now, key) !== undefined, 60 * SECOND, 10)
      assert.ok(took !== undefined && took <= 3 * SECOND, `${key} crossed after ${took} ms`)
    }
  })
})

describe('the last-resort guard', () => {
  test('a handler that throws is counted as internal-error, said once, and the node goes on', () => {
    const sim = new Simulation({ seed: 9 })
    const nodes = sim.addCluster(3)
    sim.runFor(2 * SECOND)
    const victim = nodes[0]!
    const membership = victim.engine.membership
    const original = membership.handle.bind(membership)
    membership.handle = () => {
      throw new TypeError('a bug')
    }
    const ping: Message = { label: '', from: nodes[1]!.name, fromAddress: nodes[1]!.address, type: MessageType.MemberGossip, updates: [] }
    for (let i = 0; i < 5; i++) sim.inject(victim, nodes[1]!.address, encodeMessage(ping), false)
    sim.runFor(10)
    assert.equal(victim.engine.stats.dropped('internal-error'), 5)
    assert.equal(victim.engine.takeWarnings().filter((w) => w.includes('internal error')).length, 1)
    membership.handle = original
    sim.set(nodes[1]!, 'after', 'x')
    sim.runFor(5 * SECOND)
    assert.equal(victim.engine.get(sim.now, 'after')?.value, 'x')
  })
})
