/**
 * The chaos suite on real hosts (chaos/): every scenario, short, on five
 * agents in network namespaces of the harness's own, under a steady
 * workload; each must keep every guarantee (chaos/checks.ts). Skips, saying
 * why, where network namespaces cannot be made (not root, no `ip netns`).
 *
 * The checks themselves are tested on recorded histories below, so a check
 * that could never fail would be caught here too.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { AgentHost } from '../chaos/agent-host.js'
import { type FinalView, runChecks } from '../chaos/checks.js'
import type { ScenarioResult } from '../chaos/driver.js'
import { labUnavailable } from '../chaos/lab.js'
import { SCENARIOS } from '../chaos/scenarios.js'
import type { Op, StartView, WatchedChange } from '../chaos/workload.js'

const MAIN = fileURLToPath(new URL('../chaos/main.js', import.meta.url))

describe('chaos suite on network namespaces', () => {
  const why = labUnavailable()
  test('every scenario keeps every guarantee (5 agents, 15 s each or longer where a scenario needs it)', { skip: why, timeout: 9 * 60_000 }, () => {
    const r = spawnSync(process.execPath, [MAIN, '--hosts', '5', '--scenario-duration', '15s', '--seed', '1', '--json'], { encoding: 'utf8', timeout: 8 * 60_000 })
    const results = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '[]') as ScenarioResult[]
    const failed = results.filter((x) => !x.ok)
    assert.equal(
      failed.length,
      0,
      failed.map((f) => `${f.scenario} (seed ${f.seed}):\n  ${f.violations.map((v) => `${v.check}: ${v.detail}`).join('\n  ')}`).join('\n') + `\n${r.stderr.slice(-3000)}`,
    )
    assert.deepEqual(
      results.map((x) => x.scenario),
      SCENARIOS.map((s) => s.name),
      `every scenario ran:\n${r.stderr.slice(-3000)}`,
    )
    assert.equal(r.status, 0, r.stderr.slice(-3000))
    for (const x of results) {
      assert.ok(x.writesAcked > 50, `${x.scenario}: the workload ran (${x.writesAcked} writes acknowledged)`)
      assert.notEqual(x.convergedAfterMs, null)
    }
    // The faults were real: a host cut off, killed or left was declared dead or left by the others.
    const killed = results.find((x) => x.scenario === 'kill-restart')!
    assert.ok(killed.deathsDeclared > 0, 'the killed agent was declared dead before it came back')
    // The cross-life resurrection check judged the snapshot each restart on a data dir came back with.
    assert.ok(killed.snapshotsJudged >= 1, `kill-restart: ${killed.snapshotsJudged} snapshots judged`)
    const rolling = results.find((x) => x.scenario === 'rolling-restart')!
    assert.equal(rolling.snapshotsJudged, 5, 'rolling-restart: every agent came back on the snapshot its leave wrote')
    const cut = results.find((x) => x.scenario === 'partition-half')!
    assert.ok(cut.deathsDeclared > 0, 'each side of the partition declared the other dead')
    const away = results.find((x) => x.scenario === 'away-past-retention')!
    assert.ok(
      Object.keys(away.warnings).some((w) => w.startsWith('snapshot older than the tombstone retention')),
      `the returning agent distrusted its old snapshot: ${JSON.stringify(away.warnings)}`,
    )
  })
})

describe('chaos checks on recorded histories', () => {
  const agent = (name: string, logs: AgentHost['logs'] = [], lifeLog: AgentHost['lifeLog'] = []): AgentHost =>
    ({ name, host: { index: Number(name.slice(1)) }, state: 'running', logs, lifeLog, unexpectedExits: [], rss: [] }) as unknown as AgentHost
  const op = (kind: Op['kind'], key: string, ts: number, origin = 'h0'): Op => ({
    kind,
    key,
    value: `v${ts}`,
    agent: origin,
    sentAt: ts,
    outcome: 'acked',
    version: { ts, origin },
    ackedAt: ts,
  })
  const view = (name: string, keys: [string, number][], members: [string, string][] = [['h0', 'alive'], ['h1', 'alive']]): FinalView => ({
    agent: name,
    keys: new Map(keys.map(([k, ts]) => [k, { version: { ts, origin: 'h0' } }])),
    members: new Map(members),
  })
  const base = { timeline: { partitions: [], down: [] }, convergedAfterMs: 100, convergeLimitMs: 30_000, readAt: 10_000 }
  const agents = [agent('h0'), agent('h1')]

  test('a clean history passes', () => {
    const r = runChecks({ ...base, agents, ops: [op('put', 'a', 10), op('delete', 'a', 20), op('put', 'b', 30)], changes: [], finals: [view('h0', [['b', 30]]), view('h1', [['b', 30]])] })
    assert.deepEqual(r.violations, [])
  })

  test('an acknowledged write missing on one agent is a lost write', () => {
    const r = runChecks({ ...base, agents, ops: [op('put', 'b', 30)], changes: [], finals: [view('h0', [['b', 30]]), view('h1', [])] })
    assert.equal(r.writesLost, 1)
    assert.match(r.violations[0]!.detail, /put 30@h0 of b .* absent, not deleted or expired, on h1/)
    // The evidence lists the key's operations: kind, agent, outcome, version.
    assert.match(r.violations[0]!.detail, /operations on b:\n +> [\d:.]+ put via h0: acked 30@h0/)
  })

  test('an older version where a newer write was acknowledged is a lost write', () => {
    const r = runChecks({ ...base, agents, ops: [op('put', 'b', 20), op('put', 'b', 30)], changes: [], finals: [view('h0', [['b', 30]]), view('h1', [['b', 20]])] })
    assert.equal(r.writesLost, 1)
  })

  test('a TTL write absent where it had expired by the time that agent was read is not lost; absent before is', () => {
    const ttl: Op = { ...op('ttl-put', 'c', 100), ttlMs: 1000 }
    const expired = runChecks({ ...base, readAt: 900, agents, ops: [ttl], changes: [], finals: [view('h0', [['c', 100]]), { ...view('h1', []), readAt: 1200 }] })
    assert.equal(expired.writesLost, 0, 'h1 was read after the expiry, though the read began before it')
    const early = runChecks({ ...base, readAt: 900, agents, ops: [ttl], changes: [], finals: [view('h0', [['c', 100]]), { ...view('h1', []), readAt: 950 }] })
    assert.equal(early.writesLost, 1)
  })

  test('a value older than an acknowledged delete is a resurrection, in the final state and in a change stream', () => {
    const final = runChecks({ ...base, agents, ops: [op('put', 'a', 10), op('delete', 'a', 20)], changes: [], finals: [view('h0', []), view('h1', [['a', 10]])] })
    assert.equal(final.resurrections, 1)
    const changes: WatchedChange[] = [
      { agent: 'h1', life: 1, key: 'a', version: { ts: 20, origin: 'h0' }, deleted: true, at: 1 },
      { agent: 'h1', life: 1, key: 'a', version: { ts: 10, origin: 'h0' }, deleted: false, at: 2 },
    ]
    const stream = runChecks({ ...base, agents, ops: [], changes, finals: [view('h0', []), view('h1', [])] })
    assert.equal(stream.resurrections, 1)
  })

  test('an agent back on its data dir with a value older than a delete it reported before its snapshot was taken is a resurrection', () => {
    // h1 reported the delete of a (ts 20) at 1 s; its last snapshot was taken at 5 s; killed at 10 s, back at 12 s on that snapshot.
    const lives = (o: { keptData?: boolean; deleteAt?: number; held?: number } = {}): { agents: AgentHost[]; changes: WatchedChange[] } => ({
      agents: [
        agent('h0'),
        agent('h1', [], [
          { life: 1, startedAt: 0, keptData: false },
          {
            life: 2,
            startedAt: 12_000,
            keptData: o.keptData ?? true,
            restored: { savedAtMs: 5000, entries: new Map([['a', { version: { ts: o.held ?? 10, origin: 'h0' }, deleted: false }]]) },
          },
        ]),
      ],
      changes: [{ agent: 'h1', life: 1, key: 'a', version: { ts: 20, origin: 'h0' }, deleted: true, at: o.deleteAt ?? 1000 }],
    })
    const finals = [view('h0', []), view('h1', [])]
    const fromDisk = runChecks({ ...base, ...lives(), ops: [], finals })
    assert.equal(fromDisk.resurrections, 1)
    assert.equal(fromDisk.snapshotsJudged, 1)
    assert.match(fromDisk.violations[0]!.detail, /h1 came back \(life 2, on its data dir\) with a at 10@h0 \(in the snapshot it started from/)
    // Not judged: a newer value; a new disk; a delete reported after the snapshot was taken.
    assert.equal(runChecks({ ...base, ...lives({ held: 30 }), ops: [], finals }).resurrections, 0)
    assert.equal(runChecks({ ...base, ...lives({ keptData: false }), ops: [], finals }).resurrections, 0)
    assert.equal(runChecks({ ...base, ...lives({ deleteAt: 6000 }), ops: [], finals }).resurrections, 0)
    // What the new life held when its stream began, and its stream, are judged against the same floor.
    const startViews: StartView[] = [{ agent: 'h1', life: 2, at: 12_100, keys: new Map([['a', { ts: 12, origin: 'h0' }]]) }]
    const held = runChecks({ ...base, ...lives({ held: 30 }), ops: [], startViews, finals })
    assert.equal(held.resurrections, 1)
    assert.match(held.violations[0]!.detail, /with a at 12@h0 \(held when its change stream began/)
    const streamed = lives({ held: 30 })
    streamed.changes.push({ agent: 'h1', life: 2, key: 'a', version: { ts: 15, origin: 'h0' }, deleted: false, at: 12_500 })
    assert.equal(runChecks({ ...base, ...streamed, ops: [], finals }).resurrections, 1)
  })

  test('a key deleted before an agent came back, in the snapshot it returns with, is counted stale, not a resurrection', () => {
    const away = agent('h1', [], [
      { life: 1, startedAt: 0, keptData: false },
      { life: 2, startedAt: 12_000, keptData: true, restored: { savedAtMs: 9000, entries: new Map([['a', { version: { ts: 10, origin: 'h0' }, deleted: false }]]) } },
    ])
    const del = { ...op('delete', 'a', 20), ackedAt: 11_000 }
    const r = runChecks({ ...base, agents: [agent('h0'), away], ops: [op('put', 'a', 10), del], changes: [], finals: [view('h0', []), view('h1', [])] })
    assert.equal(r.staleAtReturn, 1)
    assert.equal(r.resurrections, 0)
    assert.deepEqual(r.violations, [])
  })

  test('a death declared while the process ran and was reachable is a false death; across a partition it is not', () => {
    const logs = [{ level: 30, time: 5000, msg: 'member dead', member: 'h1' }]
    const r = runChecks({ ...base, agents: [agent('h0', logs), agent('h1')], ops: [], changes: [], finals: [view('h0', []), view('h1', [])] })
    assert.equal(r.falseDeaths, 1)
    const cut = runChecks({
      ...base,
      timeline: { partitions: [{ from: 4000, to: 6000, groupOf: [0, 1] }], down: [] },
      agents: [agent('h0', logs), agent('h1')],
      ops: [],
      changes: [],
      finals: [view('h0', []), view('h1', [])],
    })
    assert.equal(cut.falseDeaths, 0)
  })

  test('no convergence, a crash, an error line and a member listed wrongly are each reported', () => {
    const crashed = { ...agent('h1', [{ level: 50, time: 1, msg: 'boom' }]), unexpectedExits: ['h1 exited by itself'] } as unknown as AgentHost
    const r = runChecks({ ...base, convergedAfterMs: null, agents: [agent('h0'), crashed], ops: [], changes: [], finals: [view('h0', [], [['h0', 'alive'], ['h1', 'dead']])] })
    assert.deepEqual([...new Set(r.violations.map((v) => v.check))].sort(), ['convergence', 'crash', 'log-error', 'membership'])
  })
})
