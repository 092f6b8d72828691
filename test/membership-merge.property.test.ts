/**
 * Laws of membership records (fast-check): a record only moves up the total
 * order of (incarnation, status), so deliveries in any order, with any
 * duplication, leave every node with the same record; and a member table's
 * counts and fingerprint always equal those recomputed from its contents,
 * whether it started empty or from a shared base.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { type Member, type MemberUpdate, MemberStatus, NO_TAGS, memberHash } from '../src/membership/member.js'
import { MemberTable, SharedMembers } from '../src/membership/member-table.js'
import { Membership } from '../src/membership/membership.js'
import { PRESETS } from '../src/membership/presets.js'
import { SetFingerprint } from '../src/util/hash.js'
import { SeededRandom } from '../src/util/random.js'

const NOW = 1_767_225_600_000

function known(name: string): Member {
  return { name, address: `sim:${name}`, generation: 1, incarnation: 0, status: MemberStatus.Alive, tags: NO_TAGS, since: NOW }
}

function node(): Membership {
  const base = new SharedMembers([known('me'), known('a'), known('b')])
  return new Membership(
    { name: 'me', address: 'sim:me', generation: 1, seeds: [], tags: NO_TAGS, timing: PRESETS.lan, bodyBudget: 1300, maxMembers: 1000 },
    new SeededRandom(1),
    NOW,
    () => {},
    base,
  )
}

const update: fc.Arbitrary<MemberUpdate> = fc.record({
  status: fc.constantFrom(MemberStatus.Alive, MemberStatus.Suspect, MemberStatus.Dead, MemberStatus.Left),
  name: fc.constantFrom('a', 'b'),
  incarnation: fc.integer({ min: 0, max: 4 }),
  address: fc.constantFrom('sim:a', 'sim:b', 'sim:x'),
  generation: fc.constant(1),
  tags: fc.constant(NO_TAGS),
  by: fc.constantFrom('a', 'b', 'c', 'me'),
})

function recordsOf(m: Membership): string[] {
  return ['a', 'b'].map((n) => {
    const r = m.get(n)!
    return `${n}:${r.incarnation}:${r.status}`
  })
}

describe('membership records', () => {
  test('any order and duplication of updates gives the same records (a join of the (incarnation, status) order)', () => {
    fc.assert(
      fc.property(
        fc.array(update, { maxLength: 12 }).chain((us) => fc.tuple(fc.constant(us), fc.shuffledSubarray(us, { minLength: us.length, maxLength: us.length }), fc.array(fc.nat(), { maxLength: 6 }))),
        ([inOrder, shuffled, dupIdx]) => {
          const x = node()
          const y = node()
          for (const u of inOrder) x.apply(NOW, u)
          const withDups = [...shuffled]
          for (const i of dupIdx) if (inOrder.length > 0) withDups.splice(i % (withDups.length + 1), 0, inOrder[i % inOrder.length]!)
          for (const u of withDups) y.apply(NOW, u)
          assert.deepEqual(recordsOf(x), recordsOf(y))
          // And the record is the maximum of what was delivered (or the starting one).
          for (const n of ['a', 'b']) {
            let best: [number, MemberStatus] = [0, MemberStatus.Alive]
            for (const u of inOrder) {
              // A leave is only taken from the member itself.
              if (u.status === MemberStatus.Left && u.by !== u.name) continue
              if (u.name === n && (u.incarnation > best[0] || (u.incarnation === best[0] && u.status > best[1]))) best = [u.incarnation, u.status]
            }
            const r = x.get(n)!
            assert.deepEqual([r.incarnation, r.status], best)
          }
        },
      ),
      { numRuns: 500 },
    )
  })

  test('claims about this node at or above its incarnation are refuted: it stays alive, above every claim', () => {
    fc.assert(
      fc.property(fc.array(update.map((u) => ({ ...u, name: 'me' })), { maxLength: 10 }), (us) => {
        const x = node()
        for (const u of us) x.apply(NOW, u)
        const me = x.get('me')!
        assert.equal(me.status, MemberStatus.Alive)
        for (const u of us) if (u.status !== MemberStatus.Alive) assert.ok(me.incarnation > u.incarnation || u.incarnation < 1)
      }),
    )
  })
})

describe('member table', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), inc: fc.nat(3), status: fc.constantFrom(0, 1, 2, 3) }),
    fc.record({ kind: fc.constant('remove' as const), name: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
    fc.record({ kind: fc.constant('heard' as const), name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), at: fc.nat(1000), atItsHost: fc.boolean() }),
  )

  test('counts, size, fingerprint, slots, heard times and the members heard at their host agree with the contents after any changes, from any base', () => {
    fc.assert(
      fc.property(fc.subarray(['a', 'b', 'c']), fc.array(op, { maxLength: 40 }), (baseNames, ops) => {
        const table = new MemberTable(new SharedMembers(baseNames.map(known)))
        const model = new Map<string, Member>(baseNames.map((n) => [n, known(n)]))
        // Heard times: kept while the member stays, forgotten when it is removed, never noted for a stranger.
        const heard = new Map<string, number>()
        const atHost = new Set<string>()
        for (const o of ops) {
          if (o.kind === 'set') {
            const m = { ...known(o.name), incarnation: o.inc, status: o.status as MemberStatus }
            table.set(m)
            model.set(o.name, m)
          } else if (o.kind === 'remove') {
            table.remove(o.name)
            model.delete(o.name)
            heard.delete(o.name)
            atHost.delete(o.name)
          } else {
            const m = table.noteHeard(o.name, o.at, o.atItsHost)
            assert.deepEqual(m, model.get(o.name))
            if (model.has(o.name)) {
              heard.set(o.name, o.at)
              if (o.atItsHost) atHost.add(o.name)
              else atHost.delete(o.name)
            }
          }
        }
        for (const n of ['a', 'b', 'c', 'd', 'e']) assert.equal(table.heardAt(n), heard.get(n), `heard time of ${n}`)
        // randomHeard only ever returns a member whose last message came from its host, and finds each such one.
        const random = new SeededRandom(7)
        const found = new Set<string>()
        for (let i = 0; i < 200; i++) {
          const m = table.randomHeard(random, () => true)
          if (m !== undefined) found.add(m.name)
        }
        assert.deepEqual([...found].sort(), [...atHost].sort())
        assert.equal(table.size, model.size)
        assert.deepEqual([...table].map((m) => m.name).sort(), [...model.keys()].sort())
        const fp = new SetFingerprint()
        for (const m of model.values()) fp.toggle(...memberHash(m))
        assert.ok(table.fingerprint.equals(fp.hi, fp.lo))
        for (const s of [0, 1, 2, 3]) assert.equal(table.count(s), [...model.values()].filter((m) => m.status === s).length)
        const inSlots = new Set<string>()
        for (let i = 0; i < table.slots; i++) {
          const m = table.atSlot(i)
          if (m !== undefined) inSlots.add(m.name)
        }
        assert.deepEqual([...inSlots].sort(), [...model.keys()].sort())
      }),
      { numRuns: 500 },
    )
  })
})

describe('membership against forged claims', () => {
  test('a running member that hears its name claimed at another address stays a member and refutes', () => {
    const x = node()
    const before = x.currentIncarnation
    x.apply(NOW, { status: MemberStatus.Alive, name: 'me', incarnation: before + 5, address: 'sim:evil', generation: 0, tags: NO_TAGS, by: '' })
    assert.equal(x.phase, 'member')
    assert.ok(x.currentIncarnation > before + 5)
    assert.equal(x.get('me')!.address, 'sim:me')
    assert.equal(x.takeConflicts().length, 1, 'the conflict is reported')
  })

  test('only a member itself can announce that it left', () => {
    const x = node()
    x.apply(NOW, { status: MemberStatus.Left, name: 'a', incarnation: 3, address: '', generation: 0, tags: NO_TAGS, by: 'b' })
    assert.equal(x.get('a')!.status, MemberStatus.Alive)
    x.apply(NOW, { status: MemberStatus.Left, name: 'a', incarnation: 3, address: '', generation: 0, tags: NO_TAGS, by: 'a' })
    assert.equal(x.get('a')!.status, MemberStatus.Left)
  })

  test('made-up accusers do not count as confirmations', () => {
    const x = node()
    for (let i = 0; i < 50; i++) x.apply(NOW, { status: MemberStatus.Suspect, name: 'a', incarnation: 0, address: '', generation: 0, tags: NO_TAGS, by: `ghost${i}` })
    assert.equal(x.get('a')!.status, MemberStatus.Suspect)
    const s = (x as unknown as { suspicions: Map<string, { accusers: Set<string> }> }).suspicions.get('a')!
    assert.equal(s.accusers.size, 0)
  })
})
