/**
 * Hostile clients against a real agent's HTTP API on loopback: DNS
 * rebinding, cross-site requests, missing or wrong tokens, oversized and
 * slow requests, path tricks, absurd TTLs, watch streams that never read,
 * and the config, keyring file and data dir the agent keeps. After every
 * attack the agent still answers, its data is intact, and the refusal has
 * its status and code.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { Agent } from '../src/agent/agent.js'
import { resolveAgentConfig } from '../src/agent/config.js'
import { DEFAULT_WATCH_MAX_BUFFERED_BYTES, HttpApi } from '../src/agent/http-api.js'
import { MAX_TTL_MS } from '../src/codec/limits.js'
import { ConfigError } from '../src/errors.js'
import { Grapevine, generateKey } from '../src/index.js'
import { parseHostPort } from '../src/runtime/address.js'
import { keyIdOf, parseKey } from '../src/security/keyring.js'
import { waitFor } from '../src/util/wait.js'
import { type Reply, cli, rawRequest as call, startAgent, stopAgent } from './helpers/agent-process.js'

const dirs: string[] = []
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'gv-hostile-'))
  dirs.push(d)
  return d
}

const agents: Agent[] = []
/** An agent in this process (so the test can look at its API's buffers), loopback, no logs. */
async function agent(name: string, flags: Record<string, string | string[]> = {}, extra: { reloadConfig?: () => ReturnType<typeof resolveAgentConfig> } = {}): Promise<Agent> {
  const config = resolveAgentConfig({ name, bind: '127.0.0.1:0', http: '127.0.0.1:0', preset: 'local', logLevel: 'silent', ...flags }, {})
  const a = await Agent.start({ config, ...extra })
  agents.push(a)
  return a
}

async function refused(a: Agent, reason: string): Promise<number> {
  const m = await call(a.httpAddress, 'GET', '/metrics', { headers: { authorization: 'Bearer s3cret-token' } })
  const line = new RegExp(`^grapevine_http_refused_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(m.text)
  assert.ok(line !== null, `metrics carry refusals for ${reason}`)
  return Number(line[1])
}

/** The agent is up and its data intact. */
async function intact(a: Agent, key: string, value: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await call(a.httpAddress, 'GET', `/v1/kv/${key}`, { headers })
  assert.deepEqual([r.status, r.json?.value], [200, value], `the agent still serves '${key}'`)
}

describe('HTTP API under attack', () => {
  after(async () => {
    await Promise.all(agents.map((a) => a.stop()))
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  test('DNS rebinding: a Host that is not the agent gets 421 on every route; its address, localhost and allowed names pass', async () => {
    const a = await agent('host1', { httpAllowedHosts: ['gv.internal.example'] })
    const port = parseHostPort(a.httpAddress, 'x').port
    assert.equal((await call(a.httpAddress, 'PUT', '/v1/kv/k', { body: 'v' })).status, 200)
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`, `[::2]:${port}`, `10.0.0.1:${port}`]) {
      for (const [method, route] of [['GET', '/v1/kv/k'], ['GET', '/v1/kv'], ['GET', '/v1/status'], ['GET', '/v1/keyring'], ['GET', '/'], ['GET', '/metrics'], ['PUT', '/v1/kv/k'], ['DELETE', '/v1/kv/k']] as const) {
        const r = await call(a.httpAddress, method, route, { headers: { host }, ...(method === 'PUT' ? { body: 'stolen' } : {}) })
        assert.deepEqual([r.status, r.json?.code], [421, 'GV_ERR_MISDIRECTED'], `${method} ${route} with Host ${host}`)
      }
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `LOCALHOST:${port}`, `gv.internal.example:${port}`, 'gv.internal.example']) {
      assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/k', { headers: { host } })).status, 200, `Host ${host} is served`)
    }
    await intact(a, 'k', 'v')
    assert.ok((await refused(a, 'host')) >= 48)
  })

  test('CSRF: form bodies, foreign origins and cross-site fetches cannot change anything; key material is never served', async () => {
    const dir = tmp()
    const k1 = generateKey()
    const evil = generateKey()
    const file = path.join(dir, 'keyring.json')
    writeFileSync(file, JSON.stringify({ keys: [k1] }))
    const a = await agent('csrf1', { keyringFile: file })
    const port = parseHostPort(a.httpAddress, 'x').port
    await call(a.httpAddress, 'PUT', '/v1/kv/k', { body: 'v' })
    const json = { 'content-type': 'application/json' }
    // What a cross-origin form or fetch without a preflight can send.
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '']) {
      for (const op of ['install', 'use', 'remove']) {
        const r = await call(a.httpAddress, 'POST', `/v1/keyring/${op}`, { headers: type === '' ? {} : { 'content-type': type }, body: JSON.stringify({ key: evil }) })
        assert.deepEqual([r.status, r.json?.code], [415, 'GV_ERR_UNSUPPORTED_MEDIA_TYPE'], `${op} as '${type}'`)
      }
    }
    const foreign: Record<string, string>[] = [
      { origin: 'http://evil.example' },
      { origin: `http://evil.example:${port}` },
      { origin: 'null' },
      { origin: `http://localhost:${port + 1}` },
      { origin: `ftp://127.0.0.1:${port}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
    ]
    for (const h of foreign) {
      for (const [method, route, body] of [['PUT', '/v1/kv/k', 'stolen'], ['DELETE', '/v1/kv/k', undefined], ['POST', '/v1/keyring/install', JSON.stringify({ key: evil })]] as const) {
        const r = await call(a.httpAddress, method, route, { headers: { ...json, ...h }, ...(body !== undefined ? { body } : {}) })
        assert.deepEqual([r.status, r.json?.code], [403, 'GV_ERR_FORBIDDEN_ORIGIN'], `${method} ${route} with ${JSON.stringify(h)}`)
      }
    }
    await intact(a, 'k', 'v')
    // The agent's own page (same origin) may change things.
    const same = await call(a.httpAddress, 'PUT', '/v1/kv/k2', { headers: { origin: `http://${a.httpAddress}`, 'sec-fetch-site': 'same-origin' }, body: 'mine' })
    assert.equal(same.status, 200)
    const list = await call(a.httpAddress, 'GET', '/v1/keyring')
    assert.deepEqual(list.json, [{ id: keyIdOf(parseKey(k1)), primary: true }], 'ids only, the evil key never installed')
    assert.ok(!list.text.includes(k1.slice(0, 20)), 'no key material in the answer')
    const installed = await call(a.httpAddress, 'POST', '/v1/keyring/install', { headers: json, body: JSON.stringify({ key: generateKey() }) })
    assert.equal(installed.status, 200)
    assert.ok(installed.json.every((k: Record<string, unknown>) => !('key' in k)), 'keyring changes answer ids only')
    assert.ok((await refused(a, 'content-type')) >= 15)
    assert.ok((await refused(a, 'origin')) >= 21)
  })

  test('a token guards every route that reveals or changes data, compared whole', async () => {
    const a = await agent('tok1', { httpToken: 's3cret-token' })
    const good = { authorization: 'Bearer s3cret-token' }
    assert.equal((await call(a.httpAddress, 'PUT', '/v1/kv/k', { headers: good, body: 'v' })).status, 200)
    const routes = [
      ['GET', '/v1/kv/k'],
      ['GET', '/v1/kv?prefix='],
      ['GET', '/v1/members'],
      ['GET', '/v1/status'],
      ['GET', '/v1/watch'],
      ['GET', '/v1/keyring'],
      ['GET', '/metrics'],
      ['PUT', '/v1/kv/k'],
      ['DELETE', '/v1/kv/k'],
      ['POST', '/v1/keyring/install'],
    ] as const
    const wrong = [{}, { authorization: 'Bearer nope' }, { authorization: 'Bearer s3cret-tokeN' }, { authorization: 'Bearer s3cret-token-and-more' }, { authorization: 'Bearer s3cret' }, { authorization: 'Basic czNjcmV0LXRva2Vu' }, { authorization: 'Bearer' }]
    for (const [method, route] of routes) {
      for (const h of wrong) {
        const r = await call(a.httpAddress, method, route, { headers: { ...h, 'content-type': 'application/json' }, body: method === 'GET' || method === 'DELETE' ? undefined : '{"key":"x"}' } as never)
        assert.deepEqual([r.status, r.json?.code, r.headers['www-authenticate']], [401, 'GV_ERR_UNAUTHORIZED', 'Bearer'], `${method} ${route} with ${JSON.stringify(h)}`)
        assert.ok(!r.text.includes('"value"'), 'nothing revealed')
      }
    }
    await intact(a, 'k', 'v', good)
    // The page and the health check hold no data.
    assert.equal((await call(a.httpAddress, 'GET', '/')).status, 200)
    const health = await call(a.httpAddress, 'GET', '/v1/health')
    assert.deepEqual(Object.keys(health.json).sort(), ['converged', 'ok'])
    assert.equal((await call(a.httpAddress, 'GET', '/v1/status', { headers: good })).status, 200)
    assert.ok((await refused(a, 'token')) >= routes.length * wrong.length)
  })

  test('oversized bodies and headers are refused without harm', async () => {
    const a = await agent('big1')
    await call(a.httpAddress, 'PUT', '/v1/kv/k', { body: 'v' })
    let r = await call(a.httpAddress, 'PUT', '/v1/kv/big', { body: Buffer.alloc(70_000, 97) })
    assert.deepEqual([r.status, r.json?.code], [413, 'GV_ERR_VALUE_TOO_LARGE'])
    // No Content-Length (chunked): refused once the limit is crossed, the rest discarded unread.
    r = await new Promise<Reply>((resolve, reject) => {
      const { host, port } = parseHostPort(a.httpAddress, 'x')
      const req = http.request({ host, port, method: 'PUT', path: '/v1/kv/big', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let text = ''
        res.on('data', (c: Buffer) => (text += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) }))
      })
      req.on('error', reject)
      for (let i = 0; i < 40; i++) req.write(Buffer.alloc(8192, 98))
      req.end()
    })
    assert.deepEqual([r.status, r.json?.code], [413, 'GV_ERR_VALUE_TOO_LARGE'])
    assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/big')).status, 404)
    r = await call(a.httpAddress, 'POST', '/v1/keyring/install', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'x'.repeat(10_000) }) })
    assert.equal(r.status, 413)
    r = await call(a.httpAddress, 'GET', '/v1/kv/k', { headers: { 'x-junk': 'j'.repeat(64 * 1024) } })
    assert.equal(r.status, 431)
    r = await call(a.httpAddress, 'GET', `/v1/kv/${'k'.repeat(300)}`)
    assert.deepEqual([r.status, r.json?.code], [413, 'GV_ERR_KEY_TOO_LARGE'])
    await intact(a, 'k', 'v')
  })

  test('a client that sends its headers byte by byte is cut, and does not hold the server', async () => {
    const a = await agent('slow1')
    const s = a.api.server
    assert.ok(s.headersTimeout > 0 && s.headersTimeout <= 60_000, `headersTimeout ${s.headersTimeout}`)
    assert.ok(s.requestTimeout > 0 && s.requestTimeout <= 120_000, `requestTimeout ${s.requestTimeout}`)
    // The same API with a short header deadline, so the test need not wait 10 s.
    const node = a.node
    const { AgentMetrics } = await import('../src/agent/metrics.js')
    const api = new HttpApi({ node, metrics: new AgentMetrics(node), maxKeyBytes: 256, maxValueBytes: 65_536, headersTimeoutMs: 1000 })
    const bound = await api.listen('127.0.0.1', 0)
    try {
      const sock = net.connect(bound.port, '127.0.0.1')
      let closed = false
      let got = ''
      sock.on('data', (c: Buffer) => (got += c.toString()))
      sock.on('close', () => (closed = true))
      sock.on('error', () => {})
      const text = `GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}`
      for (let i = 0; i < text.length && !closed; i++) {
        sock.write(text[i]!)
        await sleep(50)
      }
      assert.ok(await waitFor(() => closed, 5000), 'the slow client was disconnected before it finished its headers')
      assert.ok(got === '' || got.startsWith('HTTP/1.1 408'), `answered nothing or 408: ${got.slice(0, 40)}`)
      const ok = await call(`127.0.0.1:${bound.port}`, 'GET', '/v1/status', { headers: { host: '127.0.0.1' } })
      assert.equal(ok.status, 200, 'others are served meanwhile and after')
    } finally {
      await api.close()
    }
  })

  test('paths are never normalised into other keys; dot segments are refused, encoded slashes reach such keys', async () => {
    const a = await agent('path1')
    await call(a.httpAddress, 'PUT', '/v1/kv/secret', { body: 'real' })
    for (const p of ['/v1/kv/x/../secret', '/v1/kv/x/%2e%2e/secret', '/v1/kv/x/%2E%2e/secret', '/v1/kv/x/.%2E/secret', '/v1/kv/./secret', '/v1/kv/%2e/secret', '/v1/kv/..', '/v1/kv/.', '/v1/kv/%2e%2e', '/v1/kv/a/..', '/v1/kv/../status']) {
      for (const method of ['GET', 'PUT', 'DELETE']) {
        const r = await call(a.httpAddress, method, p, method === 'PUT' ? { body: 'overwritten' } : {})
        assert.deepEqual([r.status, r.json?.code], [400, 'GV_ERR_INVALID_KEY'], `${method} ${p}`)
      }
    }
    await intact(a, 'secret', 'real')
    assert.equal((await call(a.httpAddress, 'GET', '/v1/status/..')).status, 404, 'no route, not /v1')
    // Keys holding dot segments: written and read with their slashes encoded, listed as they are.
    for (const key of ['a/../b', '../x', 'a/./b', '..x', 'x..', '...']) {
      const enc = encodeURIComponent(key)
      assert.equal((await call(a.httpAddress, 'PUT', `/v1/kv/${enc}`, { body: key })).status, 200, `PUT ${enc}`)
      const r = await call(a.httpAddress, 'GET', `/v1/kv/${enc}`)
      assert.deepEqual([r.status, r.json?.key, r.json?.value], [200, key, key])
    }
    const listed = (await call(a.httpAddress, 'GET', '/v1/kv?prefix=')).json.map((e: { key: string }) => e.key)
    assert.deepEqual(listed.sort(), ['...', '../x', '..x', 'a/../b', 'a/./b', 'secret', 'x..'].sort())
    assert.equal((await call(a.httpAddress, 'DELETE', `/v1/kv/${encodeURIComponent('a/../b')}`)).status, 200)
    assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/b')).status, 404)
    await intact(a, 'secret', 'real')
  })

  test('TTLs: zero, negative, non-finite, absurd or beyond 10 years are a 400; the ceiling itself is accepted', async () => {
    const a = await agent('ttl1')
    await call(a.httpAddress, 'PUT', '/v1/kv/k', { body: 'v' })
    const bad = ['0', '0s', '-1', '-1s', String(MAX_TTL_MS + 1), `${MAX_TTL_MS + 1}ms`, '1e400', '1e3', 'NaN', 'Infinity', '', ' ', '99999999999999999999d', '9'.repeat(400), '3651d', '1.5.5s', '10y']
    for (const ttl of bad) {
      const r = await call(a.httpAddress, 'PUT', `/v1/kv/t?ttl=${encodeURIComponent(ttl)}`, { body: 'v' })
      assert.deepEqual([r.status, r.json?.code], [400, 'GV_ERR_BAD_TTL'], `ttl '${ttl.slice(0, 30)}'`)
    }
    assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/t')).status, 404, 'nothing was written')
    const before = Date.now()
    const r = await call(a.httpAddress, 'PUT', `/v1/kv/t?ttl=${MAX_TTL_MS}`, { body: 'v' })
    assert.equal(r.status, 200)
    const got = await call(a.httpAddress, 'GET', '/v1/kv/t')
    assert.ok(got.json.expiresAt >= before + MAX_TTL_MS && got.json.expiresAt <= Date.now() + MAX_TTL_MS, 'the expiry is now + the ceiling')
    assert.equal((await call(a.httpAddress, 'PUT', '/v1/kv/t2?ttl=3650d', { body: 'v' })).status, 200)
    const status = await call(a.httpAddress, 'GET', '/v1/status')
    assert.equal(status.json.keys, 3)
    await intact(a, 'k', 'v')
    // The CLI refuses such TTLs before sending anything.
    const c = cli(['set', '--http', a.httpAddress, 'cli-ttl', 'v', '--ttl', '99999999999999999999d'])
    assert.equal(c.code, 2, c.stderr)
    assert.match(c.stderr, /--ttl/)
    assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/cli-ttl')).status, 404)
  })

  test('watch: streams beyond the cap get 429', async () => {
    const a = await agent('cap1', { httpMaxWatchers: '3' })
    const { host, port } = parseHostPort(a.httpAddress, 'x')
    const open: http.ClientRequest[] = []
    const openWatch = (): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = http.get({ host, port, path: '/v1/watch', agent: false }, (res) => {
          res.on('data', () => {})
          res.on('error', () => {})
          resolve(res.statusCode ?? 0)
        })
        req.on('error', reject)
        open.push(req)
      })
    try {
      for (let i = 0; i < 3; i++) assert.equal(await openWatch(), 200)
      const r = await call(a.httpAddress, 'GET', '/v1/watch')
      assert.deepEqual([r.status, r.json?.code], [429, 'GV_ERR_TOO_MANY_WATCHERS'])
      open[0]!.destroy()
      assert.ok(await waitFor(() => a.api.watchCount === 2, 5000))
      assert.equal(await openWatch(), 200, 'a slot freed is a slot again')
      assert.equal(await refused(a, 'watch-cap'), 1)
    } finally {
      for (const r of open) r.destroy()
    }
  })

  test('watch: a client that never reads is cut once its buffer is full, told why, and memory stays bounded', async () => {
    const a = await agent('slowc1')
    const { host, port } = parseHostPort(a.httpAddress, 'x')
    const sock = net.connect(port, host)
    sock.on('error', () => {})
    await new Promise((resolve) => sock.once('connect', resolve))
    sock.write(`GET /v1/watch HTTP/1.1\r\nHost: ${a.httpAddress}\r\n\r\n`)
    sock.pause() // never reads: the kernel buffers fill, then the agent's
    assert.ok(await waitFor(() => a.api.watchCount === 1, 5000))
    const value = 'x'.repeat(60_000)
    let writes = 0
    let maxBuffered = 0
    for (; writes < 3000 && a.api.watchCount > 0; writes++) {
      a.node.set(`big/${writes % 50}`, value)
      await tick()
      maxBuffered = Math.max(maxBuffered, a.api.watchBufferedBytes)
    }
    assert.equal(a.api.watchCount, 0, `cut after ${writes} writes of 60 KB`)
    assert.ok(maxBuffered <= DEFAULT_WATCH_MAX_BUFFERED_BYTES, `the agent held at most ${maxBuffered} bytes for it`)
    assert.equal(await refused(a, 'slow-consumer'), 1)
    // Reading now, the client gets what was sent, the reason, and the end of the stream.
    let got = ''
    let ended = false
    sock.on('data', (c: Buffer) => (got = (got + c.toString('latin1')).slice(-4096)))
    sock.on('close', () => (ended = true))
    sock.resume()
    assert.ok(await waitFor(() => ended, 20_000), 'the connection ends')
    assert.match(got, /event: dropped\ndata: \{"reason":"slow-consumer"/)
    assert.equal((await call(a.httpAddress, 'GET', '/v1/kv/big/0')).json.value.length, 60_000, 'the agent serves on')
  })

  test('watch: a stream already cut is not cut again by its heartbeat', async () => {
    const a = await agent('beat1')
    const { AgentMetrics } = await import('../src/agent/metrics.js')
    const metrics = new AgentMetrics(a.node)
    const api = new HttpApi({ node: a.node, metrics, maxKeyBytes: 256, maxValueBytes: 65_536, watchMaxBufferedBytes: 100_000, watchHeartbeatMs: 20, watchDropGraceMs: 60_000 })
    const bound = await api.listen('127.0.0.1', 0)
    const sock = net.connect(bound.port, '127.0.0.1')
    sock.on('error', () => {})
    try {
      await new Promise((resolve) => sock.once('connect', resolve))
      sock.write('GET /v1/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
      sock.pause()
      assert.ok(await waitFor(() => api.watchCount === 1, 5000))
      for (let i = 0; i < 3000 && api.watchCount > 0; i++) {
        a.node.set(`beat/${i % 20}`, 'y'.repeat(60_000))
        await tick()
      }
      assert.equal(api.watchCount, 0, 'cut')
      await sleep(300) // heartbeats keep firing until the socket closes
      assert.match(await metrics.text(), /grapevine_http_refused_total\{reason="slow-consumer"\} 1$/m, 'cut once')
      assert.equal((await call(a.httpAddress, 'GET', '/v1/status')).status, 200, 'the agent is up')
    } finally {
      sock.destroy()
      await api.close()
    }
  })

  test('a keyring file that cannot be written leaves the keyring unchanged and answers 500', async () => {
    const dir = tmp()
    const k1 = generateKey()
    const k2 = generateKey()
    const file = path.join(dir, 'keyring.json')
    writeFileSync(file, JSON.stringify({ keys: [k1] }))
    const a = await agent('kf1', { keyringFile: file })
    // Root ignores permissions: block the temporary file's name with a non-empty directory instead.
    const obstacle = `${file}.tmp-${process.pid}`
    mkdirSync(obstacle)
    writeFileSync(path.join(obstacle, 'x'), '')
    const json = { 'content-type': 'application/json' }
    const r = await call(a.httpAddress, 'POST', '/v1/keyring/install', { headers: json, body: JSON.stringify({ key: k2 }) })
    assert.deepEqual([r.status, r.json?.code], [500, 'GV_ERR_KEYRING_FILE'])
    assert.deepEqual(a.node.keyring.list().map((k) => k.key), [k1], 'memory unchanged')
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).keys, [k1], 'file unchanged')
    // A change the keyring refuses (removing the primary) leaves the file as it was too.
    const bad = await call(a.httpAddress, 'POST', '/v1/keyring/remove', { headers: json, body: JSON.stringify({ key: k1 }) })
    assert.equal(bad.status, 409)
    rmSync(obstacle, { recursive: true })
    assert.equal((await call(a.httpAddress, 'POST', '/v1/keyring/install', { headers: json, body: JSON.stringify({ key: k2 }) })).status, 200)
    assert.equal((await call(a.httpAddress, 'POST', '/v1/keyring/use', { headers: json, body: JSON.stringify({ key: k2 }) })).status, 200)
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')).keys, [k2, k1])
    assert.deepEqual(a.node.keyring.list().find((k) => k.primary)?.key, k2)
  })

  test('SIGHUP reload is all or nothing', async () => {
    const dir = tmp()
    const k1 = generateKey()
    const k2 = generateKey()
    const file = path.join(dir, 'keyring.json')
    writeFileSync(file, JSON.stringify({ keys: [k1] }))
    const flags = { name: 'hup1', bind: '127.0.0.1:0', http: '127.0.0.1:0', preset: 'local', keyringFile: file }
    const a = await agent('hup1', { keyringFile: file }, { reloadConfig: () => resolveAgentConfig({ ...flags, logLevel: 'fatal' }, {}) })
    const keys = (): string[] => a.node.keyring.list().map((k) => `${k.key}${k.primary ? '*' : ''}`)
    // A keyring file with one bad key: the new log level is not applied either.
    writeFileSync(file, JSON.stringify({ keys: [k2, 'not-a-key'] }))
    a.reload()
    assert.equal(a.logLevel, 'silent')
    assert.deepEqual(keys(), [`${k1}*`])
    // 16 new keys and the old primary would be 17 at once: refused before the first install.
    const many = Array.from({ length: 16 }, () => generateKey())
    writeFileSync(file, JSON.stringify({ keys: many }))
    a.reload()
    assert.deepEqual(keys(), [`${k1}*`], 'no key installed')
    assert.equal(a.logLevel, 'silent')
    writeFileSync(file, JSON.stringify({ keys: [k2, k1] }))
    a.reload()
    assert.deepEqual(keys().sort(), [k1, `${k2}*`].sort())
    assert.equal(a.logLevel, 'fatal')
  })

  test('data dir: created 0700, and the snapshot never writes through a symlink planted at its temporary name', async () => {
    const root = tmp()
    const dataDir = path.join(root, 'nested', 'data')
    const a = await agent('dd1', { dataDir })
    assert.equal(statSync(dataDir).mode & 0o777, 0o700)
    await call(a.httpAddress, 'PUT', '/v1/kv/k', { body: 'v' })
    const outside = path.join(root, 'outside.txt')
    writeFileSync(outside, 'precious')
    const snapshot = path.join(dataDir, 'snapshot.bin')
    symlinkSync(outside, `${snapshot}.tmp-${process.pid}`)
    a.saveSnapshot()
    assert.equal(readFileSync(outside, 'utf8'), 'precious', 'the file outside is untouched')
    assert.ok(lstatSync(snapshot).isFile(), 'the snapshot is a file of its own')
    assert.equal(statSync(snapshot).mode & 0o777, 0o600)
    assert.ok(!existsSync(`${snapshot}.tmp-${process.pid}`))
  })

  test('data dir: an existing group- or world-writable one is warned about', async () => {
    const dataDir = path.join(tmp(), 'open')
    mkdirSync(dataDir)
    chmodSync(dataDir, 0o777)
    const p = await startAgent('dd2', ['--data-dir', dataDir])
    try {
      assert.ok(p.logs.some((l) => String(l.msg).includes('group- or world-writable')), 'warned')
    } finally {
      await stopAgent(p, 'SIGKILL')
    }
  })
})

describe('agent config against hostile or careless settings', () => {
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })
  const base = { name: 'c', bind: '127.0.0.1:0' }
  const optionOf = (f: () => unknown): string => {
    try {
      f()
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err))
      return err.message
    }
    assert.fail('no ConfigError')
  }

  test('HTTP on a non-loopback address needs a token or --http-allow-unauthenticated', () => {
    for (const http of ['0.0.0.0:7070', '[::]:7070', '10.1.2.3:7070', 'agent.example:7070']) {
      assert.match(optionOf(() => resolveAgentConfig({ ...base, http }, {})), /'--http'.*--http-token-file.*--http-allow-unauthenticated/)
      assert.equal(resolveAgentConfig({ ...base, http, httpToken: 't' }, {}).httpToken, 't')
      assert.equal(resolveAgentConfig({ ...base, http }, { GRAPEVINE_HTTP_TOKEN: 'e' }).httpToken, 'e')
      assert.equal(resolveAgentConfig({ ...base, http, httpAllowUnauthenticated: 'true' }, {}).httpToken, undefined)
    }
    for (const http of ['127.0.0.1:7070', '127.9.9.9:0', '[::1]:7070', 'localhost:7070']) assert.equal(resolveAgentConfig({ ...base, http }, {}).http, http)
    const dir = tmp()
    const file = path.join(dir, 'token')
    writeFileSync(file, 'from-file\n')
    assert.equal(resolveAgentConfig({ ...base, http: '0.0.0.0:7070', httpTokenFile: file }, {}).httpToken, 'from-file')
    assert.equal(resolveAgentConfig({ ...base, http: '0.0.0.0:7070' }, { GRAPEVINE_HTTP_TOKEN_FILE: file }).httpToken, 'from-file')
    assert.match(optionOf(() => resolveAgentConfig({ ...base, httpTokenFile: file, httpToken: 'x' }, {})), /--http-token-file/)
    assert.match(optionOf(() => resolveAgentConfig({ ...base, httpTokenFile: path.join(dir, 'none') }, {})), /--http-token-file/)
    const r = cli(['agent', '--name', 'x', '--bind', '127.0.0.1:0', '--http', '0.0.0.0:0'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--http/)
    assert.match(cli(['agent', '--help']).stdout, /--http-token-file[\s\S]*--http-allow-unauthenticated/)
    assert.match(cli(['agent', '--help']).stdout, /ps/)
  })

  test('unusable peer addresses are refused before anything binds', async () => {
    for (const advertise of ['127.0.0.1:0', '0.0.0.0:7946', '[::]:7946', '[0:0:0:0:0:0:0:0]:7946', 'bad host!:7946', 'x..y:7946', ':7946']) {
      assert.match(optionOf(() => resolveAgentConfig({ ...base, advertise }, {})), /--advertise/, advertise)
    }
    for (const join of ['127.0.0.1:0', 'seed.example:0', 'bad_$host:7946']) assert.match(optionOf(() => resolveAgentConfig({ ...base, join: [join] }, {})), /--join/, join)
    assert.match(optionOf(() => resolveAgentConfig({ ...base }, { GRAPEVINE_JOIN: 'a.example:7946,b:0' })), /--join/)
    assert.equal(resolveAgentConfig({ ...base, advertise: '10.0.0.5:7946', join: ['seed.example:7946', '[::1]:7946'] }, {}).advertise, '10.0.0.5:7946')
    assert.equal(resolveAgentConfig({ ...base, bind: '127.0.0.1:0' }, {}).bind, '127.0.0.1:0', 'bind may take port 0')
    const r = cli(['agent', '--name', 'x', '--bind', '127.0.0.1:0', '--http', '127.0.0.1:0', '--advertise', '127.0.0.1:0'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--advertise/)
    for (const advertise of ['127.0.0.1:0', '0.0.0.0:7946']) {
      await assert.rejects(Grapevine.start({ name: 'lib', bind: '127.0.0.1:0', advertise }), (err: unknown) => err instanceof ConfigError && err.option === 'advertise')
    }
    await assert.rejects(Grapevine.start({ name: 'lib', bind: '127.0.0.1:0', seeds: ['127.0.0.1:0'] }), (err: unknown) => err instanceof ConfigError && err.option === 'seeds[0]')
  })

  test('client commands send the token from the flag, the environment or a file', async () => {
    // A separate process: the CLI runs synchronously here, and would block an agent in this process.
    const a = await startAgent('tokcli', ['--http-token', 's3cret-token'])
    after(() => stopAgent(a, 'SIGKILL'))
    const http = ['--http', a.http]
    assert.equal(cli(['set', ...http, 'k', 'v']).code, 3, 'refused without the token')
    assert.equal(cli(['set', ...http, '--token', 's3cret-token', 'k', 'v']).code, 0)
    assert.equal(cli(['get', ...http, 'k']).code, 3, 'reads need it too')
    assert.equal(cli(['get', ...http, 'k'], { GRAPEVINE_HTTP_TOKEN: 's3cret-token' }).stdout, 'v\n')
    const file = path.join(tmp(), 'token')
    writeFileSync(file, 's3cret-token\n')
    for (const cmd of [['get', 'k'], ['keys'], ['members'], ['status']]) {
      const r = cli([cmd[0]!, ...http, '--token-file', file, ...cmd.slice(1)])
      assert.equal(r.code, 0, `${cmd[0]}: ${r.stderr}`)
    }
    assert.equal(cli(['get', ...http, 'k'], { GRAPEVINE_HTTP_TOKEN_FILE: file }).code, 0)
  })
})
