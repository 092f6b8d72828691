/**
 * Hostile peers against real agents on loopback: a datagram asking to be
 * answered at port 0 does not crash the node; sixteen trickling TCP
 * connections do not keep a real peer's stream transfers out; connections
 * declaring 60 MiB each keep the buffered bytes under the cap; a captured
 * sealed packet replayed is dropped; a key peers still use is not removed
 * by mistake (API and HTTP). Plaintext and encrypted.
 *
 * Nodes bind loopback aliases (127.0.0.10...) and send their streams from
 * them, so an attacker on 127.0.0.1 is a distinct source IP.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { execFile } from 'node:child_process'
import dgram from 'node:dgram'
import http from 'node:http'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, describe, test } from 'node:test'
import { HttpApi } from '../src/agent/http-api.js'
import { AgentMetrics } from '../src/agent/metrics.js'
import { MessageType, encodeMessage } from '../src/codec/messages.js'
import { Grapevine, generateKey } from '../src/index.js'
import { parseHostPort } from '../src/runtime/address.js'
import { Keyring } from '../src/security/keyring.js'
import { PacketSecurity, SALT_BYTES } from '../src/security/packet-security.js'
import { waitFor } from '../src/util/wait.js'
import { frame, sendAllButLast, slowloris } from './helpers/stream-attack.js'

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname

const fast = { gossipIntervalMs: 100, fanout: 2, preset: 'local' as const, joinTimeoutMs: 2000 }
/** Shrunk so the test takes seconds; the defaults are 2000 ms and 5000 ms. */
const quickStreams = { streamHeaderTimeoutMs: 500, streamRateWindowMs: 500 }

const started: Grapevine[] = []
after(async () => {
  await Promise.all(started.map((n) => n.stop()))
})

async function start(name: string, host: string, seeds: readonly string[], options: Record<string, unknown> = {}): Promise<Grapevine> {
  const node = await Grapevine.start({ ...fast, ...options, name, bind: `${host}:0`, seeds: [...seeds] })
  node.on('warning', () => {})
  node.on('error', () => {})
  started.push(node)
  return node
}

function refused(n: Grapevine, reason: string): number {
  return (n.streamRefusalsByReason as ReadonlyMap<string, number>).get(reason) ?? 0
}


describe('hostile peers on loopback', () => {
  test('a Ping to be answered at port 0 does not crash the node; the refused send is counted', async () => {
    const node = await start('portzero', '127.0.0.10', [])
    const ping = encodeMessage({ label: '', from: 'evil', fromAddress: '127.0.0.1:0', type: MessageType.Ping, seq: 1, target: node.name, updates: [] })
    const sock = dgram.createSocket('udp4')
    try {
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
      const { host, port } = parseHostPort(node.address, 'node')
      for (let i = 0; i < 3; i++) sock.send(ping, port, host)
      const refusedOrDropped = (): boolean => (node.networkErrorsByCode.get('GV_ERR_BAD_ADDRESS') ?? 0) > 0 || node.stats.dropped('malformed') > 0
      assert.ok(await waitFor(refusedOrDropped, 5000), 'the bad reply address is refused and counted')
      node.set('still', 'alive')
      assert.equal(node.get('still')?.value, 'alive')
    } finally {
      sock.close()
    }
  })

  for (const encrypted of [false, true]) {
    const mode = encrypted ? 'encrypted' : 'plaintext'
    const enc = encrypted ? { encryption: { keys: [generateKey()] } } : {}

    test(`${mode}: 16 trickling connections from one IP do not keep a real peer's stream transfers out`, async () => {
      const a = await start(`sl-${mode}-a`, '127.0.0.10', [], { ...enc, ...quickStreams })
      const attack = slowloris(a.address, '127.0.0.1', 16)
      try {
        assert.ok(await waitFor(() => refused(a, 'per-ip-cap') > 0 && refused(a, encrypted ? 'header-timeout' : 'too-slow') > 0, 10_000), 'the attack is under way (plaintext: bodies cut as too slow; encrypted: preambles never complete)')
        // B joins with 200 KB A lacks (a bulk transfer) and a 20 KB value (larger than a datagram): both only go by stream.
        const b = await start(`sl-${mode}-b`, '127.0.0.11', [a.address], { ...enc, ...quickStreams, eagerPush: false })
        for (let i = 0; i < 200; i++) b.set(`bulk/${i}`, String(i).padEnd(1000, '.'))
        const big = 'x'.repeat(20_000)
        b.set('big', big)
        const got = await waitFor(() => a.get('big')?.value === big && a.entries({ prefix: 'bulk/' }).length === 200, 30_000)
        assert.ok(got, `A holds the 20 KB value: ${a.get('big') !== undefined}, bulk keys: ${a.entries({ prefix: 'bulk/' }).length}; refusals ${JSON.stringify([...a.streamRefusalsByReason])}`)
        assert.ok(a.stats.streamsIn > 0, 'they came by stream')
      } finally {
        await attack.stop()
      }
    })

    test(`${mode}: connections declaring 60 MiB each and sending fast keep buffered bytes under the cap`, async () => {
      const node = await start(`mem-${mode}`, '127.0.0.12', [], enc)
      const { host, port } = parseHostPort(node.address, 'node')
      const declared = 60 * (1 << 20)
      const cap = 2 * (64 * (1 << 20))
      const chunk = Buffer.alloc(1 << 20)
      let release!: () => void
      const allIn = new Promise<void>((resolve) => (release = resolve))
      const senders = [2, 3, 4, 5].map(async (i) => {
        const s = net.connect({ host, port, localAddress: `127.0.0.${i}` })
        s.on('error', () => {})
        await new Promise<void>((resolve) => {
          s.once('connect', resolve)
          s.once('close', resolve)
        })
        s.write(frame(declared))
        // All but the last byte, then wait until the node has taken or refused all four.
        await sendAllButLast(s, declared, chunk)
        await allIn
        if (!s.destroyed) s.end(Buffer.alloc(1))
      })
      const refusedNow = (): number => refused(node, 'memory-cap') + refused(node, 'unauthenticated-header')
      const settled = await waitFor(() => refusedNow() + node.streamBufferedBytes.now / declared === 4, 20_000)
      const peak = node.streamBufferedBytes.peak
      release()
      await Promise.all(senders)
      assert.ok(settled, `refused ${refusedNow()}, buffered ${node.streamBufferedBytes.now}`)
      assert.ok(peak <= cap, `peak ${peak} over the cap ${cap}`)
      if (encrypted) {
        assert.equal(refused(node, 'unauthenticated-header'), 4, 'no preamble: refused before any body byte is buffered')
        assert.equal(peak, 0)
      } else {
        assert.equal(refused(node, 'memory-cap'), 2)
        assert.equal(peak, 2 * declared)
      }
      assert.ok(await waitFor(() => node.streamBufferedBytes.now === 0, 10_000))
    })
  }

  test('a captured sealed ResetRequest replayed 40 times is answered at most once', async () => {
    const key = generateKey()
    const node = await start('replay', '127.0.0.13', [], { encryption: { keys: [key] } })
    for (let i = 0; i < 50; i++) node.set(`k${i}`, 'v'.repeat(500))
    // What an insider (or a capture of one) sent once: sealed under the cluster key.
    const insider = new PacketSecurity({ keyring: Keyring.fromBase64([key]), label: '', sessionSalt: randomBytes(SALT_BYTES) })
    const sealed = insider.outgoing(encodeMessage({ label: '', from: 'insider', fromAddress: '', type: MessageType.ResetRequest }))
    const sock = dgram.createSocket('udp4')
    try {
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve))
      const { host, port } = parseHostPort(node.address, 'node')
      for (let i = 0; i < 40; i++) {
        sock.send(sealed, port, host)
        // Spread over more than the gossip interval, so the stream rate limit alone would not refuse them.
        await sleep(10)
      }
      assert.ok(await waitFor(() => node.stats.dropped('replayed') === 39, 5000), `replayed ${node.stats.dropped('replayed')}`)
      assert.ok(node.stats.resetsSent <= 1, `resets sent ${node.stats.resetsSent}`)
    } finally {
      sock.close()
    }
  })

  test('a key peers still seal with is not removed without force (API and HTTP 409); using an unseen key warns', async () => {
    const k1 = generateKey()
    const k2 = generateKey()
    const a = await start('guard-a', '127.0.0.14', [], { encryption: { keys: [k1] } })
    const b = await start('guard-b', '127.0.0.15', [a.address], { encryption: { keys: [k1] } })
    assert.ok(await waitFor(() => a.members().filter((m) => m.status === 'alive').length === 2, 10_000))
    a.keyring.install(k2)
    b.keyring.install(k2)
    const warnings: string[] = []
    a.on('warning', (w) => warnings.push(w))
    a.keyring.use(k2)
    assert.ok(warnings.some((w) => w.includes('no peer sealed a packet with it')), warnings.join('\n'))
    // B still seals with k1.
    await sleep(300)
    assert.throws(() => a.keyring.remove(k1), { code: 'GV_ERR_KEY_IN_USE' })
    const api = new HttpApi({ node: a, metrics: new AgentMetrics(a), maxKeyBytes: 256, maxValueBytes: 65_536 })
    const { port } = await api.listen('127.0.0.1', 0)
    try {
      const post = async (body: unknown): Promise<{ status: number; json: { code?: string } }> => {
        const res = await fetch(`http://127.0.0.1:${port}/v1/keyring/remove`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
        return { status: res.status, json: (await res.json()) as { code?: string } }
      }
      const inUse = await post({ key: k1 })
      assert.equal(inUse.status, 409)
      assert.equal(inUse.json.code, 'GV_ERR_KEY_IN_USE')
      assert.equal((await post({ key: k1, force: 'yes' })).status, 400)
      assert.equal((await post({ key: k1, force: true })).status, 200)
      assert.deepEqual(a.keyring.list().map((k) => k.key), [k2])
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      assert.match(metrics, /grapevine_stream_buffered_bytes/)
    } finally {
      await api.close()
    }
  })

  test('the CLI sends force only with keyring remove --force', async () => {
    const bodies: string[] = []
    const server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c.toString()))
      req.on('end', () => {
        bodies.push(`${req.url} ${body}`)
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('[]')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as net.AddressInfo).port
    const run = (args: string[]): Promise<void> =>
      new Promise((resolve, reject) => execFile(process.execPath, [CLI, 'keyring', 'remove', '--http', `127.0.0.1:${port}`, ...args], (err) => (err ? reject(err) : resolve())))
    try {
      const key = generateKey()
      await run([key])
      await run(['--force', key])
      assert.deepEqual(bodies, [`/v1/keyring/remove ${JSON.stringify({ key })}`, `/v1/keyring/remove ${JSON.stringify({ key, force: true })}`])
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})
