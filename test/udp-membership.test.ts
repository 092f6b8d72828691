/**
 * Membership on real sockets (loopback): failure detection of a process
 * killed with SIGKILL, a graceful leave, and a refused duplicate name.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { after, describe, test } from 'node:test'
import { Grapevine, NameConflictError } from '../src/index.js'
import { waitFor } from '../src/util/wait.js'

const CHILD = fileURLToPath(new URL('./helpers/child-node.js', import.meta.url))

describe('membership on loopback UDP', () => {
  const started: Grapevine[] = []
  after(async () => {
    await Promise.all(started.map((n) => n.stop()))
  })

  async function cluster(n: number, prefix: string, options: Record<string, unknown> = {}): Promise<Grapevine[]> {
    const nodes: Grapevine[] = []
    for (let i = 0; i < n; i++) {
      const seeds = nodes.length > 0 ? [nodes[0]!.address] : []
      const node = await Grapevine.start({ preset: 'local', ...options, name: `${prefix}${i + 1}`, bind: '127.0.0.1:0', seeds })
      nodes.push(node)
      started.push(node)
    }
    return nodes
  }

  const statusIn = (viewer: Grapevine, name: string): string | undefined => viewer.members().find((m) => m.name === name)?.status
  const aliveCount = (n: Grapevine): number => n.members().filter((m) => m.status === 'alive').length

  test('10 nodes: one in a child process killed with SIGKILL is declared dead by all the others', async () => {
    const nodes = await cluster(9, 'k')
    const child = spawn(process.execPath, [CHILD, 'victim', nodes[0]!.address, 'local'], { stdio: ['ignore', 'pipe', 'inherit'] })
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer]
      const { address } = JSON.parse(line.toString()) as { address: string }
      assert.ok(await waitFor(() => nodes.every((n) => statusIn(n, 'victim') === 'alive'), 10_000), 'the child joined')
      assert.ok(await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === 10), 10_000), 'ten alive')
      const events: string[] = []
      for (const n of nodes) n.on('member', (e) => e.member.name === 'victim' && events.push(`${n.name}:${e.type}`))
      child.kill('SIGKILL')
      const detected = await waitFor(() => nodes.every((n) => statusIn(n, 'victim') === 'dead'), 30_000)
      assert.ok(detected, `declared dead by all: ${nodes.map((n) => `${n.name}=${statusIn(n, 'victim')}`).join(' ')}`)
      assert.ok(events.some((e) => e.endsWith(':suspect')) || events.every((e) => e.endsWith(':dead')), 'events report it')
      assert.equal(nodes[0]!.members().find((m) => m.name === 'victim')!.address, address)
      // Nobody else was accused.
      for (const n of nodes) assert.equal(n.members().filter((m) => m.status === 'alive').length, 9, `${n.name} still sees 9 alive`)
    } finally {
      child.kill('SIGKILL')
    }
  })

  test('5 nodes as separate processes converge, and one killed with SIGKILL is declared dead by the others', async () => {
    interface Report {
      stateHash: string
      keys: number
      members: Record<string, string>
    }
    const names = ['p1', 'p2', 'p3', 'p4', 'p5']
    const latest = new Map<string, Report>()
    const children = new Map<string, ReturnType<typeof spawn>>()
    try {
      let seed = ''
      for (const name of names) {
        const child = spawn(process.execPath, [CHILD, name, seed, 'local'], {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, GV_CHILD_SET: `proc/${name}=${name}`, GV_CHILD_REPORT_MS: '100' },
        })
        children.set(name, child)
        let buffered = ''
        let started: (address: string) => void = () => {}
        const address = new Promise<string>((resolve) => (started = resolve))
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString()
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            const line = JSON.parse(buffered.slice(0, nl)) as { address?: string } & Report
            buffered = buffered.slice(nl + 1)
            if (line.address !== undefined) started(line.address)
            else latest.set(name, line)
          }
        })
        const a = await address
        if (seed === '') seed = a
      }
      const reports = (): Report[] => names.filter((n) => children.get(n)!.exitCode === null && children.get(n)!.signalCode === null).map((n) => latest.get(n)!).filter(Boolean)
      const converged = await waitFor(() => {
        const r = reports()
        return r.length === 5 && r.every((x) => x.keys === 5 && x.stateHash === r[0]!.stateHash && Object.values(x.members).filter((s) => s === 'alive').length === 5)
      }, 20_000)
      assert.ok(converged, `five processes converge: ${JSON.stringify(Object.fromEntries(latest))}`)
      children.get('p3')!.kill('SIGKILL')
      await once(children.get('p3')!, 'exit')
      latest.delete('p3')
      const others = names.filter((n) => n !== 'p3')
      const detected = await waitFor(() => others.every((n) => latest.get(n)?.members.p3 === 'dead'), 30_000)
      assert.ok(detected, `p3 declared dead by all others: ${others.map((n) => `${n}=${latest.get(n)?.members.p3}`).join(' ')}`)
      for (const n of others) {
        assert.equal(Object.values(latest.get(n)!.members).filter((s) => s === 'alive').length, 4, `${n} still sees the 4 live ones alive`)
      }
    } finally {
      for (const c of children.values()) c.kill('SIGKILL')
    }
  })

  test('a graceful leave is seen as left at once, not dead', async () => {
    const nodes = await cluster(4, 'l')
    assert.ok(await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === 4), 10_000))
    const leaver = nodes[3]!
    await leaver.leave()
    await leaver.stop()
    assert.ok(await waitFor(() => nodes.slice(0, 3).every((n) => statusIn(n, leaver.name) === 'left'), 3_000), 'left everywhere')
  })

  test('a seed given as a DNS name is looked up and joined', async () => {
    const [first] = await cluster(1, 'd')
    const port = first!.address.slice(first!.address.lastIndexOf(':') + 1)
    const joiner = await Grapevine.start({ preset: 'local', name: 'd-joiner', bind: '127.0.0.1:0', seeds: [`localhost:${port}`] })
    started.push(joiner)
    assert.ok(await waitFor(() => aliveCount(joiner) === 2 && aliveCount(first!) === 2, 10_000), 'joined through localhost')
  })

  test('a node of another cluster label is refused and said so once, not per packet', async () => {
    const b = await Grapevine.start({ preset: 'local', name: 'lab-b', bind: '127.0.0.1:0', label: 'blue' })
    started.push(b)
    const warnings: string[] = []
    b.on('warning', (w) => warnings.push(w))
    const a = await Grapevine.start({ preset: 'local', name: 'lab-a', bind: '127.0.0.1:0', label: 'green', seeds: [b.address], joinTimeoutMs: 0 })
    started.push(a)
    assert.ok(await waitFor(() => (b.stats.drops.get('label-mismatch') ?? 0) >= 3, 10_000), 'several packets refused')
    assert.equal(warnings.length, 1, warnings.join('\n'))
    assert.match(warnings[0]!, /lab-a is in cluster 'green', we are in 'blue'/)
    assert.equal(aliveCount(b), 1, 'nothing changed: b knows only itself')
  })

  test('a second process with a live node name refuses to start with a clear error', async () => {
    const nodes = await cluster(3, 'c')
    assert.ok(await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === 3), 10_000))
    const conflicts: string[] = []
    nodes[1]!.on('conflict', (c) => conflicts.push(c.theirAddress))
    await assert.rejects(
      Grapevine.start({ preset: 'local', name: nodes[1]!.name, bind: '127.0.0.1:0', seeds: [nodes[0]!.address] }),
      (err: unknown) => err instanceof NameConflictError && err.code === 'GV_ERR_NAME_CONFLICT' && err.theirAddress === nodes[1]!.address,
    )
    assert.equal(conflicts.length, 1, 'the running node logged the conflict with the newcomer address')
    assert.ok(nodes.every((n) => statusIn(n, nodes[1]!.name) === 'alive'))
  })
})
