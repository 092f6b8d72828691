/**
 * Membership and failure detection in the seeded simulator: outcomes only
 * (who ends up alive, suspect, dead, left or reaped). Timing distributions
 * are in `npm run bench`.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MemberStatus, STATUS_NAMES } from '../src/membership/member.js'
import type { MemberEvent } from '../src/membership/membership.js'
import type { SimNode, Simulation } from '../src/sim/simulation.js'
import { describeDivergence, simulate } from './helpers/sim.js'

const SECOND = 1000

function statusOf(viewer: SimNode, name: string): MemberStatus | undefined {
  return viewer.engine.membership.get(name)?.status
}

/** Whether every live node other than `subject` sees `subject` with `status`. */
function allSee(sim: Simulation, subject: string, status: MemberStatus | undefined): boolean {
  return sim.liveNodes().every((n) => n.name === subject || statusOf(n, subject) === status)
}

function describeViews(sim: Simulation, subject: string): string {
  const counts = new Map<string, number>()
  for (const n of sim.liveNodes()) {
    if (n.name === subject) continue
    const s = statusOf(n, subject)
    const k = s === undefined ? 'absent' : STATUS_NAMES[s]
    counts.set(k, (counts.get(k) ?? 0) + 1)
  }
  return `${subject} as seen by the others: ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}`
}

/** Every live node sees every live node alive (and `expected` members in all). */
function assertOneCluster(sim: Simulation, expected: number): void {
  const live = sim.liveNodes()
  for (const n of live) {
    for (const m of live) {
      assert.equal(statusOf(n, m.name), MemberStatus.Alive, `${n.name} sees ${m.name} as ${STATUS_NAMES[statusOf(n, m.name) ?? 0]}`)
    }
    assert.equal(n.engine.membership.liveCount, expected, `${n.name} counts ${n.engine.membership.liveCount} live members`)
  }
}

/** Records membership events; `deadWhileUp` lists nodes declared dead while they were running and reachable. */
function watchEvents(sim: Simulation): { events: { node: string; event: MemberEvent }[]; deadWhileUp: string[] } {
  const log = { events: [] as { node: string; event: MemberEvent }[], deadWhileUp: [] as string[] }
  sim.onMemberEvent = (node, event) => {
    log.events.push({ node: node.name, event })
    if (event.type === 'dead') {
      const subject = sim.nodes.find((x) => x.name === event.member.name)
      if (subject !== undefined && subject.up && sim.now >= subject.frozenUntil && sim.network.reachable(node.index, subject.index)) {
        log.deadWhileUp.push(`${node.name} declared ${subject.name} dead at ${sim.now}`)
      }
    }
  }
  return log
}

describe('membership and failure detection (simulated)', () => {
  test('a crashed member is suspected, then marked dead by every live node; no one else is accused', (t) => {
    simulate(t.name, 1, {}, (sim) => {
      const nodes = sim.addCluster(100)
      const log = watchEvents(sim)
      sim.runFor(10 * SECOND)
      const victim = nodes[42]!
      sim.crash(victim)
      const took = sim.runUntilTrue(() => allSee(sim, victim.name, MemberStatus.Dead), 30 * SECOND)
      assert.notEqual(took, undefined, describeViews(sim, victim.name))
      assert.ok(log.events.some((e) => e.event.type === 'suspect' && e.event.member.name === victim.name), 'suspected first')
      assert.deepEqual(log.deadWhileUp, [])
      sim.runFor(20 * SECOND)
      assert.deepEqual(log.deadWhileUp, [])
      assertOneCluster(sim, 99)
    })
  })

  test('a suspected live member refutes with a higher incarnation and is never declared dead', (t) => {
    simulate(t.name, 2, {}, (sim) => {
      const nodes = sim.addCluster(30)
      const log = watchEvents(sim)
      sim.runFor(5 * SECOND)
      const subject = nodes[5]!
      const before = subject.engine.membership.currentIncarnation
      // A suspicion raised at one node, as if its probe had failed.
      const accuser = nodes[0]!
      ;(accuser.engine.membership as unknown as { accuse(now: number, m: unknown): void }).accuse(
        sim.clockOf(accuser),
        accuser.engine.membership.get(subject.name),
      )
      sim.runFor(30 * SECOND)
      assert.ok(subject.engine.membership.currentIncarnation > before, 'the subject raised its incarnation')
      assert.ok(subject.engine.membership.stats.refutations >= 1, 'the subject refuted')
      assert.deepEqual(log.deadWhileUp, [])
      assertOneCluster(sim, 30)
      for (const n of nodes) assert.equal(n.engine.membership.get(subject.name)!.incarnation, subject.engine.membership.currentIncarnation)
    })
  })

  test('a process frozen for 3 s may be suspected but is not declared dead, and declares no one dead', (t) => {
    for (const seed of [3, 4, 5]) {
      simulate(`${t.name} #${seed}`, seed, {}, (sim) => {
        const nodes = sim.addCluster(100)
        const log = watchEvents(sim)
        sim.runFor(10 * SECOND)
        const frozen = nodes[7]!
        sim.freeze(frozen, 3 * SECOND)
        sim.runFor(30 * SECOND)
        const dead = log.events.filter((e) => e.event.type === 'dead').map((e) => `${e.node}:${e.event.member.name}`)
        assert.deepEqual(dead, [], 'no member was declared dead')
        assert.equal(frozen.engine.membership.stats.suspicionsRaised, 0, 'the frozen node accused no one')
        assert.ok(frozen.engine.membership.stats.stalls >= 1, 'the frozen node noticed its stall')
        assertOneCluster(sim, 100)
      })
    }
  })

  test('a member frozen far longer than the timeouts is declared dead, then refutes and comes back', (t) => {
    simulate(t.name, 6, {}, (sim) => {
      const nodes = sim.addCluster(20)
      sim.runFor(5 * SECOND)
      const frozen = nodes[3]!
      sim.freeze(frozen, 30 * SECOND)
      sim.runFor(29 * SECOND)
      assert.ok(allSee(sim, frozen.name, MemberStatus.Dead), describeViews(sim, frozen.name))
      sim.runFor(15 * SECOND)
      assertOneCluster(sim, 20)
    })
  })

  test('a graceful leave is seen as left, never dead, and the member is reaped later; its keys stay', (t) => {
    simulate(t.name, 7, { engine: { timing: { reapTimeoutMs: 60 * SECOND } } }, (sim) => {
      const nodes = sim.addCluster(50)
      const log = watchEvents(sim)
      sim.runFor(5 * SECOND)
      const leaver = nodes[9]!
      sim.set(leaver, 'written-by-leaver', 'stays')
      sim.runFor(5 * SECOND)
      sim.leave(leaver)
      sim.runFor(2 * SECOND)
      sim.crash(leaver)
      assert.ok(allSee(sim, leaver.name, MemberStatus.Left), describeViews(sim, leaver.name))
      sim.runFor(30 * SECOND)
      assert.ok(!log.events.some((e) => e.event.type === 'dead'), 'nobody was declared dead')
      sim.runFor(40 * SECOND)
      assert.ok(allSee(sim, leaver.name, undefined), `reaped everywhere: ${describeViews(sim, leaver.name)}`)
      assert.equal(log.events.filter((e) => e.event.type === 'reaped' && e.event.member.name === leaver.name).length, 49)
      for (const n of sim.liveNodes()) assert.equal(n.engine.get(sim.clockOf(n), 'written-by-leaver')?.value, 'stays')
      assertOneCluster(sim, 49)
    })
  })

  test('a node restarted with the same name supersedes its previous run at once and is listed once', (t) => {
    simulate(t.name, 8, {}, (sim) => {
      const nodes = sim.addCluster(30)
      sim.runFor(5 * SECOND)
      const r = nodes[12]!
      sim.crash(r)
      sim.runFor(1500)
      sim.restart(r, [nodes[0]!.address])
      const took = sim.runUntilTrue(() => sim.liveNodes().every((n) => statusOf(n, r.name) === MemberStatus.Alive && n.engine.membership.get(r.name)!.generation === r.generation), 10 * SECOND)
      assert.notEqual(took, undefined, describeViews(sim, r.name))
      for (const n of sim.liveNodes()) {
        assert.equal(n.engine.membership.list().filter((m) => m.member.name === r.name).length, 1, 'listed once')
      }
      sim.runFor(20 * SECOND)
      assertOneCluster(sim, 30)
    })
  })

  test('a second live process with a taken name detects the conflict and refuses to join', (t) => {
    simulate(t.name, 9, {}, (sim) => {
      const nodes = sim.addCluster(10)
      sim.runFor(5 * SECOND)
      const impostor = sim.addNode({ name: nodes[4]!.name, seeds: [nodes[0]!.address], address: 'sim:impostor' })
      sim.runFor(5 * SECOND)
      assert.equal(impostor.engine.phase, 'conflict')
      const conflicts = impostor.engine.takeConflicts()
      assert.equal(conflicts.length, 1)
      assert.equal(conflicts[0]!.weAreNewcomer, true)
      assert.equal(conflicts[0]!.theirAddress, nodes[4]!.address)
      assert.equal(conflicts[0]!.ourAddress, 'sim:impostor')
      // The original saw it too, and everyone still lists the original.
      assert.ok(nodes[4]!.engine.takeConflicts().some((c) => !c.weAreNewcomer))
      for (const n of nodes) assert.equal(n.engine.membership.get(nodes[4]!.name)!.address, nodes[4]!.address)
      sim.crash(impostor)
      sim.runFor(10 * SECOND)
      for (const n of nodes) for (const m of nodes) assert.equal(statusOf(n, m.name), MemberStatus.Alive)
    })
  })

  test('100 nodes started together through one seed all see 100 alive', (t) => {
    simulate(t.name, 10, {}, (sim) => {
      sim.addNode({ seeds: [] })
      for (let i = 1; i < 100; i++) sim.addNode()
      const took = sim.runUntilTrue(() => sim.nodes.every((n) => n.engine.membership.table.count(MemberStatus.Alive) === 100), 20 * SECOND)
      assert.notEqual(took, undefined, `alive counts: ${sim.nodes.map((n) => n.engine.membership.table.count(MemberStatus.Alive)).join(' ')}`)
    })
  })

  test('nodes started together, each with all the others as seeds (no node starts alone), form one cluster', (t) => {
    // As a Kubernetes StatefulSet or a fixed host list starts: every node is joining, none is a member yet.
    simulate(t.name, 12, {}, (sim) => {
      const n = 7
      const addresses = Array.from({ length: n }, (_, i) => `sim:${i}`)
      for (let i = 0; i < n; i++) sim.addNode({ seeds: addresses.filter((_, j) => j !== i) })
      const took = sim.runUntilTrue(() => sim.nodes.every((x) => x.engine.membership.table.count(MemberStatus.Alive) === n), 10 * SECOND)
      assert.notEqual(took, undefined, `alive counts: ${sim.nodes.map((x) => x.engine.membership.table.count(MemberStatus.Alive)).join(' ')}; phases: ${sim.nodes.map((x) => x.engine.phase).join(' ')}`)
      assert.ok(took! <= 3 * SECOND, `formed in ${took} ms`)
    })
  })

  test('tags spread as an update', (t) => {
    simulate(t.name, 11, {}, (sim) => {
      const nodes = sim.addCluster(20)
      const log = watchEvents(sim)
      sim.runFor(3 * SECOND)
      nodes[2]!.engine.setTags(sim.clockOf(nodes[2]!), { role: 'db', zone: 'a' })
      sim.runFor(5 * SECOND)
      for (const n of nodes) assert.deepEqual(n.engine.membership.get(nodes[2]!.name)!.tags, { role: 'db', zone: 'a' })
      assert.equal(log.events.filter((e) => e.event.type === 'update' && e.event.member.name === nodes[2]!.name).length, 19)
    })
  })

  test('a 50/50 partition: each side marks the other dead; after healing, one cluster with one state', (t) => {
    simulate(t.name, 12, {}, (sim) => {
      const nodes = sim.addCluster(40)
      sim.runFor(5 * SECOND)
      sim.network.partition((i) => (i < 20 ? 0 : 1), sim.nodes.length)
      sim.set(nodes[0]!, 'left-side', 'L')
      sim.set(nodes[30]!, 'right-side', 'R')
      sim.runFor(60 * SECOND)
      for (const n of nodes) {
        for (const m of nodes) {
          const same = n.index < 20 === m.index < 20
          assert.equal(statusOf(n, m.name), same ? MemberStatus.Alive : MemberStatus.Dead, `${n.name} sees ${m.name}`)
        }
      }
      sim.network.heal()
      const took = sim.runUntilTrue(() => {
        for (const n of nodes) if (n.engine.membership.table.count(MemberStatus.Alive) !== 40) return false
        return sim.converged()
      }, 30 * SECOND)
      assert.notEqual(took, undefined, `alive counts ${nodes.map((n) => n.engine.membership.table.count(MemberStatus.Alive)).join(' ')}\n${describeDivergence(sim)}`)
      for (const n of nodes) {
        assert.equal(n.engine.get(sim.clockOf(n), 'left-side')?.value, 'L')
        assert.equal(n.engine.get(sim.clockOf(n), 'right-side')?.value, 'R')
      }
    })
  })

  test('after a long partition, nodes whose incarnation moved on meanwhile are alive again on the other side', (t) => {
    // Agents that publish their state hash as a tag raise their incarnation about once a second, so
    // when a 50/50 split heals, each side holds the other dead at an incarnation long passed. A
    // claim below a member's incarnation must not simply be ignored: the member answers its
    // accuser with its current record, else the sides would stay dead to each other for good.
    simulate(t.name, 15, {}, (sim) => {
      const nodes = sim.addCluster(8)
      sim.runFor(5 * SECOND)
      const bump = (round: number): void => {
        for (const n of sim.liveNodes()) n.engine.setTags(sim.clockOf(n), { round: String(round) })
      }
      sim.network.partition((i) => (i < 4 ? 0 : 1), sim.nodes.length)
      for (let s = 0; s < 45; s++) {
        bump(s)
        sim.runFor(SECOND)
      }
      for (const n of nodes) for (const m of nodes) if (n.index < 4 !== m.index < 4) assert.equal(statusOf(n, m.name), MemberStatus.Dead, `${n.name} sees ${m.name}`)
      sim.network.heal()
      let round = 45
      const took = sim.runUntilTrue(() => {
        if (sim.now % SECOND === 0) bump(round++)
        return nodes.every((n) => n.engine.membership.table.count(MemberStatus.Alive) === 8)
      }, 30 * SECOND)
      assert.notEqual(took, undefined, `alive counts ${nodes.map((n) => n.engine.membership.table.count(MemberStatus.Alive)).join(' ')}`)
    })
  })

  test('full member-list syncs still run while tags change every second', (t) => {
    // Only status changes hold back a fingerprint-driven sync (churn in flight); an agent's state
    // hash tag changes about once a second and must not stop membership anti-entropy for good.
    simulate(t.name, 16, {}, (sim) => {
      const nodes = sim.addCluster(8)
      sim.runFor(10 * SECOND)
      const syncs = (): number => nodes.reduce((a, n) => a + n.engine.membership.stats.memberSyncsSent, 0)
      const before = syncs()
      for (let s = 0; s < 120; s++) {
        for (const n of nodes) n.engine.setTags(sim.clockOf(n), { round: String(s) })
        sim.runFor(SECOND)
      }
      // At most one started per node per memberSyncIntervalMs (30 s), each answered once.
      const ran = syncs() - before
      assert.ok(ran >= 8, `${ran} member-list syncs in 120 s of tag churn`)
      assert.ok(ran <= 2 * 8 * (120 / 30 + 1), `${ran} member-list syncs in 120 s: more than the interval allows`)
    })
  })

  test('a rolling restart (each node down 2 intervals) leaves one cluster, all alive, keys intact', (t) => {
    simulate(t.name, 13, {}, (sim) => {
      const nodes = sim.addCluster(20)
      sim.runFor(3 * SECOND)
      for (let i = 0; i < 50; i++) sim.set(nodes[i % 20]!, `k${i}`, `v${i}`)
      sim.runFor(5 * SECOND)
      for (const n of nodes) {
        sim.crash(n)
        sim.runFor(2 * SECOND)
        const seed = nodes[(n.index + 1) % nodes.length]!
        sim.restart(n, [seed.address])
        sim.runFor(3 * SECOND)
      }
      const took = sim.runUntilTrue(() => nodes.every((n) => n.engine.membership.table.count(MemberStatus.Alive) === 20) && sim.converged(), 30 * SECOND)
      assert.notEqual(took, undefined, `alive counts ${nodes.map((n) => n.engine.membership.table.count(MemberStatus.Alive)).join(' ')}`)
      assertOneCluster(sim, 20)
      for (const n of nodes) for (let i = 0; i < 50; i++) assert.equal(n.engine.get(sim.clockOf(n), `k${i}`)?.value, `v${i}`)
    })
  })

  test('under 10% message loss for 10 simulated minutes no live member is declared dead', (t) => {
    simulate(t.name, 14, {}, (sim) => {
      sim.network.faults.loss = 0.1
      sim.addCluster(100)
      const log = watchEvents(sim)
      sim.runFor(600 * SECOND)
      assert.deepEqual(log.deadWhileUp, [])
      const refutations = sim.nodes.reduce((a, n) => a + n.engine.membership.stats.refutations, 0)
      assert.ok(refutations > 0, 'loss did cause suspicions, which were refuted')
    })
  })
})
