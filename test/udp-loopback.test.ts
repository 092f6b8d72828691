import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { waitFor } from '../src/util/wait.js'
import { ConfigError, type ChangeEvent, Grapevine, InvalidKeyError, InvalidTtlError, StoppedError, ValueTooLargeError } from '../src/index.js'

const fast = { gossipIntervalMs: 100, fanout: 2 }

describe('real nodes on loopback UDP', () => {
  const started: Grapevine[] = []
  after(async () => {
    await Promise.all(started.map((n) => n.stop()))
  })

  async function cluster(n: number, options: Record<string, unknown> = {}, host = '127.0.0.1'): Promise<Grapevine[]> {
    const nodes: Grapevine[] = []
    for (let i = 0; i < n; i++) {
      const seeds = nodes.length > 0 ? [nodes[0]!.address] : []
      const bind = host.includes(':') ? `[${host}]:0` : `${host}:0`
      const node = await Grapevine.start({ ...fast, ...options, name: `node${i + 1}`, bind, seeds })
      nodes.push(node)
      started.push(node)
    }
    return nodes
  }

  test('five nodes converge: writes, an overwrite, a delete, a TTL', async () => {
    const nodes = await cluster(5)
    const [a, b, c] = nodes as [Grapevine, Grapevine, Grapevine]
    a.set('service_version', 'v1.2.0')
    b.set('config_hash', 'abcdef123')
    c.set('bytes', new Uint8Array([0, 1, 2, 255]))
    const same = (): boolean => nodes.every((n) => n.stateHash === a.stateHash)
    assert.ok(await waitFor(() => same() && nodes.every((n) => n.entries().length === 3), 10_000), 'initial writes converge')
    a.set('service_version', 'v1.3.0')
    b.delete('config_hash')
    c.set('lease', 'held', { ttlMs: 600 })
    assert.ok(
      await waitFor(() => nodes.every((n) => n.get('service_version')?.value === 'v1.3.0' && n.get('config_hash') === undefined), 10_000),
      'overwrite and delete converge',
    )
    assert.deepEqual(nodes[4]!.get('bytes')?.value, new Uint8Array([0, 1, 2, 255]), 'bytes stay bytes')
    assert.ok(await waitFor(() => nodes.every((n) => n.get('lease') === undefined), 5_000), 'TTL expires everywhere')
    assert.ok(await waitFor(same, 5_000), 'final state hashes agree')
    assert.ok(await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === 5), 5_000), 'every node learns of every other')
    assert.equal(nodes[3]!.get('service_version')?.version.origin, 'node1', 'the version names the writer')
  })

  test('twenty nodes in one process converge', async () => {
    const nodes = await cluster(20, { preset: 'local' })
    nodes.forEach((n, i) => n.set(`twenty/${i}`, n.name))
    const ok = await waitFor(
      () => nodes.every((n) => n.entries({ prefix: 'twenty/' }).length === 20 && n.stateHash === nodes[0]!.stateHash),
      15_000,
    )
    assert.ok(ok, `all 20 writes on all 20 nodes: ${nodes.map((n) => n.entries({ prefix: 'twenty/' }).length).join(' ')}`)
    assert.ok(await waitFor(() => nodes.every((n) => n.members().filter((m) => m.status === 'alive').length === 20), 10_000), 'every node sees the other 19 alive')
  })

  test('clusterStatus: converged only once every alive member published our state hash', async () => {
    const nodes = await cluster(3, { preset: 'local', announceStateHash: true, announceIntervalMs: 200 })
    assert.ok(await waitFor(() => nodes.every((n) => n.clusterStatus().converged), 10_000), 'an idle cluster converges')
    nodes[0]!.set('cs/key', 'v')
    const right = nodes[0]!.clusterStatus()
    assert.equal(right.converged, false, 'right after a write the others have not published its hash')
    assert.equal(right.agreeing, 1)
    assert.ok(await waitFor(() => nodes.every((n) => n.clusterStatus().converged), 10_000), 'converged again once the write spread')
    const s = nodes[2]!.clusterStatus()
    assert.equal(s.alive, 3)
    assert.ok(s.members.every((m) => m.stateHash === nodes[0]!.stateHash))
  })

  test('a node bound to every interface but advertising another loopback address is reached there', async () => {
    const { createSocket } = await import('node:dgram')
    // A free port, then the node binds 0.0.0.0 on it and advertises 127.0.0.2 (loopback too).
    const probe = createSocket('udp4')
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r))
    const port = probe.address().port
    await new Promise<void>((r) => probe.close(() => r()))
    const a = await Grapevine.start({ ...fast, preset: 'local', name: 'adv-a', bind: `0.0.0.0:${port}`, advertise: `127.0.0.2:${port}` })
    started.push(a)
    const b = await Grapevine.start({ ...fast, preset: 'local', name: 'adv-b', bind: '127.0.0.1:0', seeds: [`127.0.0.2:${port}`] })
    started.push(b)
    assert.equal(a.address, `127.0.0.2:${port}`)
    a.set('adv', 'yes')
    assert.ok(await waitFor(() => b.get('adv')?.value === 'yes' && b.members().find((m) => m.name === 'adv-a')?.status === 'alive', 10_000))
    assert.equal(b.members().find((m) => m.name === 'adv-a')!.address, `127.0.0.2:${port}`, 'peers know it by its advertised address')
  })

  test('a 64 KiB value spreads over a TCP stream', async () => {
    const nodes = await cluster(3, { gossipIntervalMs: 100 })
    const big = new Uint8Array(64 * 1024).map((_, i) => i % 251)
    nodes[0]!.set('blob', big)
    assert.ok(await waitFor(() => nodes.every((n) => n.get('blob') !== undefined), 10_000))
    assert.deepEqual(nodes[2]!.get('blob')!.value, big)
    assert.ok(nodes[0]!.stats.streamsOut + nodes[1]!.stats.streamsOut > 0)
  })

  test('a cluster on [::1] works', async (t) => {
    let nodes: Grapevine[]
    try {
      nodes = await cluster(2, {}, '::1')
    } catch (err) {
      t.skip(`IPv6 loopback unavailable: ${(err as Error).message}`)
      return
    }
    nodes[0]!.set('v6', 'yes')
    assert.ok(await waitFor(() => nodes[1]!.get('v6')?.value === 'yes', 5_000))
  })

  test('change events and watch() report remote writes with their origin', async () => {
    const [a, b] = (await cluster(2)) as [Grapevine, Grapevine]
    const ac = new AbortController()
    const seen: ChangeEvent[] = []
    const watching = (async () => {
      for await (const e of b.watch({ prefix: 'app/', signal: ac.signal })) {
        seen.push(e)
        if (seen.length === 2) ac.abort()
      }
    })()
    a.set('other', 'ignored')
    a.set('app/x', '1')
    assert.ok(await waitFor(() => b.get('app/x') !== undefined, 5_000))
    a.delete('app/x')
    await Promise.race([watching, sleep(5_000)])
    ac.abort()
    await watching
    assert.equal(seen.length, 2)
    assert.equal(seen[0]!.key, 'app/x')
    assert.equal(seen[0]!.value, '1')
    assert.equal(seen[0]!.version.origin, 'node1')
    assert.equal(seen[1]!.value, undefined, 'the delete is reported with no value')
    assert.equal(seen[1]!.previous?.value, '1')
  })

  test('configuration is validated with an error naming the option', async () => {
    await assert.rejects(Grapevine.start({ name: '', bind: '127.0.0.1:0' }), (e: unknown) => e instanceof ConfigError && e.option === 'name')
    await assert.rejects(Grapevine.start({ name: 'x', bind: '127.0.0.1:0', fanout: 0 }), (e: unknown) => e instanceof ConfigError && e.option === 'fanout')
    await assert.rejects(Grapevine.start({ name: 'x', bind: 'nonsense' }), (e: unknown) => e instanceof ConfigError && e.option === 'bind')
    await assert.rejects(
      Grapevine.start({ name: 'x', bind: '127.0.0.1:0', seeds: ['ok:1', 'bad'] }),
      (e: unknown) => e instanceof ConfigError && e.option === 'seeds[1]' && e.code === 'GV_ERR_CONFIG',
    )
    await assert.rejects(
      Grapevine.start({ name: 'x', bind: '127.0.0.1:0', gossipIntervalMs: -5 }),
      (e: unknown) => e instanceof ConfigError && e.option === 'gossipIntervalMs',
    )
    await assert.rejects(
      Grapevine.start({ name: 'x', bind: '127.0.0.1:0', colour: 'red' } as never),
      (e: unknown) => e instanceof ConfigError && /colour/.test(e.message),
    )
  })

  test('keys and values are checked against the limits; a stopped node refuses writes', async () => {
    const node = await Grapevine.start({ name: 'limits', bind: '127.0.0.1:0', maxValueBytes: 1024 })
    assert.throws(() => node.set('', 'x'), InvalidKeyError)
    assert.throws(() => node.set('k'.repeat(257), 'x'), (e: unknown) => e instanceof InvalidKeyError && e.code === 'GV_ERR_INVALID_KEY')
    assert.throws(() => node.set('k', 'x'.repeat(1025)), ValueTooLargeError)
    assert.throws(() => node.set('k', 'x', { ttlMs: -1 }), InvalidTtlError)
    assert.throws(() => node.set('\ud800', 'x'), InvalidKeyError)
    node.set('k', 'x'.repeat(1024))
    await node[Symbol.asyncDispose]()
    assert.throws(() => node.set('k', 'y'), StoppedError)
  })

  test('setTags at run time is held to the tags limit (before: unchecked, so the tags never spread)', async () => {
    const node = await Grapevine.start({ name: 'tags', bind: '127.0.0.1:0' })
    try {
      assert.throws(() => node.setTags({ big: 'x'.repeat(600) }), (e: unknown) => e instanceof ConfigError && e.option === 'tags')
      assert.throws(() => node.setTags({ n: 1 as unknown as string }), ConfigError)
      node.setTags({ role: 'cache' })
      assert.equal(node.members().find((m) => m.name === 'tags')?.tags.role, 'cache')
    } finally {
      await node.stop()
    }
  })

  test('a restored incarnation far above the clock is reset with a warning, so peers take our records', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error): void => void warnings.push(w.message)
    process.on('warning', onWarning)
    const snapshot = { entries: [], watermarks: new Map<string, number>(), gcFloors: new Map<string, number>() }
    const node = await Grapevine.start({ name: 'restored', bind: '127.0.0.1:0' }, { snapshot, trusted: true, incarnation: 2 ** 52 })
    try {
      await new Promise((r) => setImmediate(r))
      const inc = node.members().find((m) => m.name === 'restored')!.incarnation
      assert.ok(inc < 2 ** 52 && inc <= Date.now() + 2 ** 32, `incarnation ${inc}`)
      assert.ok(warnings.some((w) => w.includes('beyond the ceiling')), warnings.join('; '))
    } finally {
      process.off('warning', onWarning)
      await node.stop()
    }
  })
})
