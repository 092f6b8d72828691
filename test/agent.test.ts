/**
 * The agent end to end: `grapevine agent` processes on loopback, driven
 * through the HTTP API and the CLI.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { resolveAgentConfig } from '../src/agent/config.js'
import { generateKey } from '../src/index.js'
import { keyIdOf, parseKey } from '../src/security/keyring.js'
import { waitFor } from '../src/util/wait.js'
import { type AgentProcess, api, cli, startAgent, stopAgent } from './helpers/agent-process.js'
import { DnsResponder } from './helpers/dns-responder.js'

describe('grapevine agent', () => {
  const running: AgentProcess[] = []
  const dirs: string[] = []
  const tmp = (): string => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'gv-agent-'))
    dirs.push(d)
    return d
  }
  async function agent(name: string, flags: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
    const a = await startAgent(name, flags, env)
    running.push(a)
    return a
  }
  after(async () => {
    await Promise.all(running.map((a) => stopAgent(a, 'SIGKILL')))
  })

  test('five agents converge through HTTP writes, and report it', async () => {
    const first = await agent('c1')
    const all = [first]
    for (let i = 2; i <= 5; i++) all.push(await agent(`c${i}`, ['--join', first.gossip]))
    for (const a of all) {
      const r = await api(a, 'PUT', `/v1/kv/conv/${a.name}`, `written at ${a.name}`)
      assert.equal(r.status, 200)
      assert.equal(r.json.key, `conv/${a.name}`)
      assert.equal(r.json.version.origin, a.name)
    }
    const converged = await waitFor(async () => {
      const s = await Promise.all(all.map((a) => api(a, 'GET', '/v1/status')))
      return s.every((x) => x.json.cluster.converged === true && x.json.keys === 5 && x.json.stateHash === s[0]!.json.stateHash && x.json.members.alive === 5)
    }, 20_000)
    assert.ok(converged, 'all five report converged: true with the same state hash')
    const listed = await api(all[4]!, 'GET', '/v1/kv?prefix=conv/')
    assert.deepEqual(
      listed.json.map((e: { key: string }) => e.key),
      all.map((a) => `conv/${a.name}`),
    )
    const got = await api(all[3]!, 'GET', '/v1/kv/conv/c1')
    assert.equal(got.json.value, 'written at c1')
    const members = await api(all[2]!, 'GET', '/v1/members')
    assert.equal(members.json.filter((m: { status: string }) => m.status === 'alive').length, 5)
    assert.ok(members.json.every((m: Record<string, unknown>) => ['name', 'address', 'status', 'incarnation', 'tags'].every((k) => k in m)))
    const metrics = await api(all[0]!, 'GET', '/metrics')
    for (const name of ['grapevine_messages_sent', 'grapevine_messages_received{type="Probe"}', 'grapevine_bytes_received', 'grapevine_dropped', 'grapevine_members', 'grapevine_keys', 'grapevine_change_arrival_seconds', 'grapevine_failure_detection_seconds', 'grapevine_process_nodejs_eventloop_lag_seconds', 'grapevine_cluster_converged 1']) {
      assert.ok(metrics.text.includes(name), `metrics include ${name}`)
    }
    // SIGTERM: a graceful leave, seen as `left` by the others; exit code 0.
    assert.equal(await stopAgent(all[4]!), 0)
    const left = await waitFor(async () => (await api(first, 'GET', '/v1/members')).json.find((m: { name: string }) => m.name === 'c5')?.status === 'left', 10_000)
    assert.ok(left, 'the others see c5 as left')
  })

  test('every CLI command against a live agent, with its exit codes', async () => {
    const dir = tmp()
    const k1 = generateKey()
    const k2 = generateKey()
    const keyringFile = path.join(dir, 'keyring.json')
    writeFileSync(keyringFile, JSON.stringify({ keys: [k1] }))
    const a = await agent('cli1', ['--keyring-file', keyringFile])
    const http = ['--http', a.http]
    let r = cli(['set', ...http, 'app/version', 'v1.3.0'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /app\/version = v1\.3\.0/)
    r = cli(['set', ...http, 'app/lease', 'held', '--ttl', '1h', '--json'])
    assert.equal(r.code, 0)
    assert.equal(JSON.parse(r.stdout).key, 'app/lease')
    r = cli(['get', ...http, 'app/version'])
    assert.deepEqual([r.code, r.stdout], [0, 'v1.3.0\n'])
    r = cli(['get', ...http, 'app/version', '--json'])
    assert.equal(JSON.parse(r.stdout).version.origin, 'cli1')
    r = cli(['get', ...http, 'app/missing'])
    assert.equal(r.code, 1, 'not found is exit code 1')
    r = cli(['keys', ...http, '--prefix', 'app/'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^KEY\s+VALUE\s+VERSION\s+EXPIRES\napp\/lease\s+held.*\napp\/version\s+v1\.3\.0/)
    r = cli(['keys', ...http, '--json'])
    assert.equal(JSON.parse(r.stdout).length, 2)
    r = cli(['members', ...http])
    assert.match(r.stdout, /^NAME\s+ADDRESS\s+STATUS.*\ncli1\s+127\.0\.0\.1:\d+\s+alive/)
    r = cli(['status', ...http, '--json'])
    assert.equal(JSON.parse(r.stdout).keys, 2)
    r = cli(['status', ...http])
    assert.match(r.stdout, /converged\s+yes/)
    // watch: the change made meanwhile is printed.
    const { spawn } = await import('node:child_process')
    const { CLI } = await import('./helpers/agent-process.js')
    const watcher = spawn(process.execPath, [CLI, 'watch', ...http, '--prefix', 'app/', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let watched = ''
    watcher.stdout.on('data', (c: Buffer) => (watched += c.toString()))
    await sleep(500)
    assert.equal(cli(['del', ...http, 'app/version']).code, 0)
    assert.ok(await waitFor(() => watched.includes('"deleted":true'), 5000), `watch printed the delete: ${watched}`)
    watcher.kill('SIGINT')
    r = cli(['del', ...http, 'app/version'])
    assert.equal(r.code, 1, 'deleting an absent key is not found')
    // keyring: list, install, use, remove (and the file follows).
    const id = (k: string): number => keyIdOf(parseKey(k))
    r = cli(['keyring', 'list', ...http, '--json'])
    assert.deepEqual(JSON.parse(r.stdout), [{ id: id(k1), primary: true }], 'ids, never the keys')
    assert.equal(cli(['keyring', 'install', ...http, k2]).code, 0)
    assert.equal(cli(['keyring', 'use', ...http, k2]).code, 0)
    assert.equal(cli(['keyring', 'remove', ...http, k1]).code, 0)
    r = cli(['keyring', 'list', ...http, '--json'])
    assert.deepEqual(JSON.parse(r.stdout), [{ id: id(k2), primary: true }])
    const { readFileSync } = await import('node:fs')
    assert.deepEqual(JSON.parse(readFileSync(keyringFile, 'utf8')).keys, [k2], 'the keyring file was rewritten')
    r = cli(['keyring', 'remove', ...http, k2])
    assert.notEqual(r.code, 0, 'the primary cannot be removed')
    // usage errors, an unreachable agent, help and version
    assert.equal(cli(['get']).code, 2)
    assert.equal(cli(['frobnicate']).code, 2)
    assert.equal(cli(['get', '--http', '127.0.0.1:1', 'x']).code, 3)
    assert.equal(cli(['--help']).code, 0)
    assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+/)
    assert.match(cli(['keygen']).stdout, /^[A-Za-z0-9+/]{43}=\n$/)
  })

  test('bad HTTP input gets the documented errors; a token guards reads and writes', async () => {
    const a = await agent('bad1', ['--http-token', 's3cret'])
    const auth = { authorization: 'Bearer s3cret' }
    assert.equal((await api(a, 'PUT', '/v1/kv/k', 'v')).status, 401)
    assert.equal((await api(a, 'PUT', '/v1/kv/k', 'v', { authorization: 'Bearer nope' })).json.code, 'GV_ERR_UNAUTHORIZED')
    assert.equal((await api(a, 'PUT', '/v1/kv/k', 'v', auth)).status, 200)
    assert.equal((await api(a, 'GET', '/v1/kv/k')).status, 401, 'reads need the token too')
    let r = await api(a, 'PUT', `/v1/kv/${'k'.repeat(300)}`, 'v', auth)
    assert.deepEqual([r.status, r.json.code], [413, 'GV_ERR_KEY_TOO_LARGE'])
    r = await api(a, 'PUT', '/v1/kv/big', new Uint8Array(70_000), { ...auth, 'content-type': 'application/octet-stream' })
    assert.deepEqual([r.status, r.json.code], [413, 'GV_ERR_VALUE_TOO_LARGE'])
    r = await api(a, 'PUT', '/v1/kv/%E0%A4%A', 'v', auth)
    assert.deepEqual([r.status, r.json.code], [400, 'GV_ERR_INVALID_KEY'])
    r = await api(a, 'PUT', '/v1/kv/', 'v', auth)
    assert.equal(r.status, 400)
    r = await api(a, 'PUT', '/v1/kv/t?ttl=soon', 'v', auth)
    assert.deepEqual([r.status, r.json.code], [400, 'GV_ERR_BAD_TTL'])
    r = await api(a, 'GET', '/v1/nothing', undefined, auth)
    assert.deepEqual([r.status, r.json.code], [404, 'GV_ERR_NO_ROUTE'])
    r = await api(a, 'POST', '/v1/kv/k', 'v', auth)
    assert.equal(r.status, 405)
    r = await api(a, 'PUT', '/v1/kv/bin', new Uint8Array([0, 255, 7]), { ...auth, 'content-type': 'application/octet-stream' })
    assert.equal(r.status, 200)
    r = await api(a, 'GET', '/v1/kv/bin', undefined, auth)
    assert.deepEqual([r.json.value, r.json.valueEncoding], [Buffer.from([0, 255, 7]).toString('base64'), 'base64'])
    assert.ok(typeof r.json.message === 'undefined' && typeof r.json.version.ts === 'number')
    for (const e of [await api(a, 'GET', '/v1/kv/none', undefined, auth), await api(a, 'DELETE', '/v1/kv/none', undefined, auth)]) {
      assert.deepEqual([e.status, typeof e.json.code, typeof e.json.message], [404, 'string', 'string'])
    }
    const page = await api(a, 'GET', '/')
    assert.ok(page.status === 200 && page.text.includes('<title>grapevine</title>'))
    // Every route docs/openapi.json describes is served (none answers "no route").
    const { readFileSync } = await import('node:fs')
    const spec = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> }
    for (const [route, item] of Object.entries(spec.paths)) {
      for (const method of Object.keys(item).filter((m) => ['get', 'put', 'delete', 'post'].includes(m))) {
        if (route === '/v1/watch') continue
        const r = await api(a, method.toUpperCase(), route.replace('{key}', 'spec-key'), method === 'get' || method === 'delete' ? undefined : '{"key":"x"}', {
          ...auth,
          'content-type': 'application/json',
        })
        assert.notEqual(r.json?.code, 'GV_ERR_NO_ROUTE', `${method} ${route} is served`)
      }
    }
  })

  test('a restart from the data dir keeps the data and rejoins without seeds; a corrupt snapshot stops it clearly', async () => {
    const dir = tmp()
    const seed = await agent('d0')
    let a = await agent('d1', ['--join', seed.gossip, '--data-dir', dir])
    await api(a, 'PUT', '/v1/kv/kept', 'yes')
    await api(a, 'PUT', '/v1/kv/gone', 'soon')
    await api(a, 'DELETE', '/v1/kv/gone')
    assert.ok(await waitFor(async () => (await api(seed, 'GET', '/v1/kv/kept')).status === 200, 10_000))
    assert.equal(await stopAgent(a), 0)
    // No --join this time: it knows its members from the snapshot.
    a = await agent('d1', ['--data-dir', dir])
    const status = await api(a, 'GET', '/v1/status')
    assert.equal(status.json.keys, 1, 'the data is there at once')
    assert.equal(status.json.tombstones, 1, 'the tombstone too')
    assert.equal((await api(a, 'GET', '/v1/kv/kept')).json.value, 'yes')
    assert.ok(
      await waitFor(async () => (await api(a, 'GET', '/v1/members')).json.filter((m: { status: string }) => m.status === 'alive').length === 2, 10_000),
      'rejoined the cluster without seeds',
    )
    assert.equal(await stopAgent(a), 0)
    // Corrupt the snapshot: the agent refuses to start and says how to go on.
    const { readFileSync } = await import('node:fs')
    const file = path.join(dir, 'snapshot.bin')
    const bytes = readFileSync(file)
    bytes[bytes.length >> 1]! ^= 0xff
    writeFileSync(file, bytes)
    const refused = cli(['agent', '--name', 'd1', '--bind', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', dir])
    assert.equal(refused.code, 2, 'exit code 2: a restart would not help')
    assert.match(refused.stderr, /checksum.*--discard-snapshot/s)
    a = await agent('d1', ['--data-dir', dir, '--discard-snapshot', '--join', seed.gossip])
    assert.ok(await waitFor(async () => (await api(a, 'GET', '/v1/kv/kept')).status === 200, 10_000), 'the cluster gives the data back')
  })

  test('configuration: flag over environment over file over default; a bad value names its flag before binding', () => {
    const dir = tmp()
    const file = path.join(dir, 'agent.json')
    writeFileSync(file, JSON.stringify({ name: 'from-file', http: '127.0.0.1:7071', fanout: 5, gossipIntervalMs: '2s', label: 'file' }))
    const c = resolveAgentConfig({ name: 'from-flag' }, { GRAPEVINE_NAME: 'from-env', GRAPEVINE_FANOUT: '4', GRAPEVINE_JOIN: 'a:1, b:2' }, file)
    assert.equal(c.name, 'from-flag')
    assert.equal(c.fanout, 4)
    assert.equal(c.http, '127.0.0.1:7071')
    assert.equal(c.gossipIntervalMs, 2000)
    assert.deepEqual(c.join, ['a:1', 'b:2'])
    assert.equal(c.bind, '0.0.0.0:7946', 'the default')
    assert.throws(() => resolveAgentConfig({ name: 'x', http: 'nope' }, {}), /--http/)
    assert.throws(() => resolveAgentConfig({ name: 'x' }, { GRAPEVINE_FANOUT: 'many' }), /GRAPEVINE_FANOUT/)
    assert.throws(() => resolveAgentConfig({}, {}), /--name/)
    const r = cli(['agent', '--name', 'x', '--bind', '127.0.0.1:0', '--http', '127.0.0.1:0', '--preset', 'fast'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--preset/)
  })

  test('DNS seeds from a local DNS responder: a name that resolves later is joined once it does', async () => {
    const dns = await DnsResponder.start()
    try {
      const first = await agent('dns1')
      const port = first.gossip.slice(first.gossip.lastIndexOf(':') + 1)
      // The name does not resolve yet (NXDOMAIN): the agent starts anyway and keeps looking it up.
      const second = await agent('dns2', ['--join', `seeds.grapevine.test:${port}`, '--dns-server', dns.address])
      await sleep(1000)
      assert.equal((await api(second, 'GET', '/v1/status')).json.members.alive, 1, 'alone while the name does not resolve')
      dns.records.set('seeds.grapevine.test', ['127.0.0.1'])
      const joined = await waitFor(async () => (await api(second, 'GET', '/v1/status')).json.members.alive === 2, 15_000)
      assert.ok(joined, 'joined once the name resolved')
      assert.ok(dns.queries >= 2, `the name was looked up again (${dns.queries} queries)`)
    } finally {
      await dns.close()
    }
  })

  test('a snapshot older than the retention is reconciled by the cluster: nothing deleted meanwhile comes back', async () => {
    const dir = tmp()
    const retention = ['--tombstone-retention', '1500ms']
    const seed = await agent('old0', retention)
    let a = await agent('old1', [...retention, '--join', seed.gossip, '--data-dir', dir])
    await api(a, 'PUT', '/v1/kv/doomed', 'v')
    await api(a, 'PUT', '/v1/kv/survivor', 'v')
    assert.ok(await waitFor(async () => (await api(seed, 'GET', '/v1/kv?prefix=')).json.length === 2, 10_000))
    assert.equal(await stopAgent(a), 0)
    // While old1 is away: the key is deleted, and the tombstone collected after the retention.
    await api(seed, 'DELETE', '/v1/kv/doomed')
    await sleep(3000)
    assert.equal((await api(seed, 'GET', '/v1/status')).json.tombstones, 0, 'the tombstone was collected')
    a = await agent('old1', [...retention, '--data-dir', dir])
    assert.ok(a.logs.some((l) => String(l.msg).includes('older than the tombstone retention')), 'the agent says its snapshot is not trusted')
    const settled = await waitFor(async () => (await api(a, 'GET', '/v1/kv/doomed')).status === 404, 10_000)
    assert.ok(settled, 'the deleted key is gone from the returning agent')
    await sleep(1000)
    assert.equal((await api(seed, 'GET', '/v1/kv/doomed')).status, 404, 'and it did not come back to the cluster')
    assert.equal((await api(a, 'GET', '/v1/kv/survivor')).json.value, 'v')
  })

  test('gossip beyond loopback without a keyring is warned about at start; on loopback, or with a keyring, it is not', async () => {
    const warned = (a: AgentProcess): boolean => a.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('gossip listens beyond loopback without a keyring'))
    const open = await agent('warn1', ['--bind', '0.0.0.0:0', '--advertise', '127.0.0.1:1'])
    assert.ok(warned(open), 'warned for 0.0.0.0 without a keyring')
    const dir = tmp()
    const file = path.join(dir, 'keyring.json')
    writeFileSync(file, JSON.stringify({ keys: [generateKey()] }))
    const sealed = await agent('warn2', ['--bind', '0.0.0.0:0', '--advertise', '127.0.0.1:2', '--keyring-file', file])
    const local = await agent('warn3')
    assert.ok(!warned(sealed) && !warned(local))
  })

  test('SIGHUP reads the keyring file again', async () => {
    const dir = tmp()
    const k1 = generateKey()
    const k2 = generateKey()
    const file = path.join(dir, 'keyring.json')
    writeFileSync(file, JSON.stringify({ keys: [k1] }))
    const a = await agent('hup1', ['--keyring-file', file])
    writeFileSync(file, JSON.stringify({ keys: [k2, k1] }))
    a.child.kill('SIGHUP')
    const reloaded = await waitFor(async () => {
      const keys = (await api(a, 'GET', '/v1/keyring')).json as { id: number; primary: boolean }[]
      return keys.length === 2 && keys.find((k) => k.primary)?.id === keyIdOf(parseKey(k2))
    }, 5000)
    assert.ok(reloaded, 'the new key is installed and primary')
    assert.ok(a.logs.some((l) => l.msg === 'reloaded'))
  })
})
