/**
 * Issue 14's attacks, run again against two built agents (`grapevine agent`,
 * each its own process, on loopback aliases; the attacker on 127.0.0.1), one
 * after another on the same cluster: a datagram to be answered at port 0, an
 * alive member at port 0, an incarnation at 2^52, a forged Reset, Delta and
 * push, sixteen trickling streams and four of 60 MiB, cross-site and
 * rebinding HTTP requests, a TTL past its field, a replayed sealed packet
 * (encrypted) or a reflected full transfer (plaintext), watch clients that
 * never read, a flood of made-up members, a path with `..`. After all of
 * them both agents run, see each other alive, hold their data, spread new
 * writes both ways, and one restarts from its data dir.
 *
 * Each attack has its own failing-then-passing test elsewhere (THREAT_MODEL.md);
 * this one shows that together, against the shipped binary, they leave a
 * working cluster.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_LIMITS } from '../src/codec/limits.js'
import { MessageType, decodeMessage } from '../src/codec/messages.js'
import { generateKey } from '../src/index.js'
import { MemberStatus, incarnationCeiling } from '../src/membership/member.js'
import { parseHostPort } from '../src/runtime/address.js'
import { Keyring } from '../src/security/keyring.js'
import { PacketSecurity, SALT_BYTES } from '../src/security/packet-security.js'
import { hlcFromPhysicalMs } from '../src/state/hlc.js'
import { waitFor } from '../src/util/wait.js'
import { type AgentProcess, cli, rawRequest, startAgent, stopAgent } from './helpers/agent-process.js'
import { type RawEntry, frame, message, writeEntry, writeOriginMap, writeSegments, writeUpdates } from './helpers/hostile-peer.js'
import { frame as lengthHeader, sendAllButLast, slowloris } from './helpers/stream-attack.js'

const ATTACKER = '127.0.0.1'
const TOKEN = 'attack-test-token-0123456789'
const HONEST = 20

/** The agent's counters by reason from its Prometheus text (`grapevine_dropped`, `grapevine_stream_refusals`, `grapevine_http_refused_total`). */
async function counters(a: AgentProcess, metric: string): Promise<Map<string, number>> {
  const r = await rawRequest(a.http, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })
  assert.equal(r.status, 200, `metrics of ${a.name}`)
  const out = new Map<string, number>()
  const re = new RegExp(`^${metric}(?:_total)?\\{reason="([^"]+)"\\} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'gm')
  for (const m of r.text.matchAll(re)) out.set(m[1]!, Number(m[2]))
  return out
}

/** VmRSS of the agent's process (Linux), in bytes. */
function rssBytes(a: AgentProcess): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${a.child.pid!}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

const auth = { authorization: `Bearer ${TOKEN}` }

async function getJson(a: AgentProcess, target: string): Promise<unknown> {
  const r = await rawRequest(a.http, 'GET', target, { headers: auth })
  return r.status === 200 ? r.json : undefined
}

async function put(a: AgentProcess, key: string, value: string): Promise<number> {
  return (await rawRequest(a.http, 'PUT', `/v1/kv/${encodeURIComponent(key)}`, { headers: { ...auth, 'content-type': 'text/plain' }, body: value })).status
}

async function valueOf(a: AgentProcess, key: string): Promise<string | undefined> {
  const j = (await getJson(a, `/v1/kv/${encodeURIComponent(key)}`)) as { value?: string } | undefined
  return j?.value
}

function running(a: AgentProcess): boolean {
  return a.child.exitCode === null && a.child.signalCode === null
}

for (const encrypted of [false, true]) {
  const mode = encrypted ? 'encrypted' : 'plaintext'
  describe(`two built agents under every attack of issue 14 (${mode})`, () => {
    let dir: string
    let key: string
    let flags: string[]
    let a: AgentProcess
    let b: AgentProcess
    let udp: dgram.Socket
    const honest = new Map<string, string>()
    const answers: Buffer[] = []

    const sendUdp = (to: AgentProcess, bytes: Buffer): Promise<void> => {
      const { host, port } = parseHostPort(to.gossip, 'gossip')
      return new Promise((resolve) => udp.send(bytes, port, host, () => resolve()))
    }
    const sendTcp = (to: AgentProcess, bytes: Buffer): Promise<void> => {
      const { host, port } = parseHostPort(to.gossip, 'gossip')
      return new Promise((resolve) => {
        const s = net.connect({ host, port, localAddress: ATTACKER })
        const timer = setTimeout(() => s.destroy(), 3000)
        s.on('error', () => undefined)
        s.on('close', () => {
          clearTimeout(timer)
          resolve()
        })
        s.end(frame(bytes))
      })
    }
    const hdr = (type: MessageType, from = 'mallory', fromAddress = '') => ({ type, label: '', from, fromAddress })

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), `gv-attack-${mode}-`))
      writeFileSync(path.join(dir, 'token'), TOKEN, { mode: 0o600 })
      key = generateKey()
      writeFileSync(path.join(dir, 'keyring.json'), JSON.stringify({ keys: [key] }), { mode: 0o600 })
      flags = ['--http-token-file', path.join(dir, 'token'), '--http-max-watchers', '4', ...(encrypted ? ['--keyring-file', path.join(dir, 'keyring.json')] : [])]
      a = await startAgent(`atk-a-${mode}`, [...flags, '--bind', '127.0.0.20:0', '--data-dir', path.join(dir, 'a')])
      b = await startAgent(`atk-b-${mode}`, [...flags, '--bind', '127.0.0.21:0', '--data-dir', path.join(dir, 'b'), '--join', a.gossip])
      udp = dgram.createSocket('udp4')
      udp.on('message', (m) => answers.push(m))
      await new Promise<void>((resolve) => udp.bind(0, ATTACKER, resolve))
      for (let i = 0; i < HONEST; i++) {
        const k = `honest/${i}`
        assert.equal(await put(i % 2 === 0 ? a : b, k, `v${i}`), 200)
        honest.set(k, `v${i}`)
      }
      const spread = await waitFor(async () => (await Promise.all([...honest].map(async ([k, v]) => (await valueOf(a, k)) === v && (await valueOf(b, k)) === v))).every(Boolean), 20_000)
      assert.ok(spread, 'the honest data is on both agents before the attacks')
    })

    after(async () => {
      udp?.close()
      for (const x of [a, b]) if (x !== undefined) await stopAgent(x, 'SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    })

    test('1. a Ping to be answered at port 0 and an alive member at port 0: refused at decode; --advertise :0 exits 2', async () => {
      const before = await counters(a, 'grapevine_dropped')
      await sendUdp(a, message(hdr(MessageType.Ping, 'mallory', '127.0.0.1:0'), (w) => writeUpdates(w.varint(1).string(a.name), [])))
      await sendUdp(a, message(hdr(MessageType.MemberGossip), (w) => writeUpdates(w, [{ status: MemberStatus.Alive, name: 'ghost', incarnation: 1, address: '127.0.0.1:0', generation: 1 }])))
      if (!encrypted) assert.ok(await waitFor(async () => ((await counters(a, 'grapevine_dropped')).get('malformed') ?? 0) >= (before.get('malformed') ?? 0) + 2, 5000), 'both counted as malformed')
      const r = cli(['agent', '--name', 'adv0', '--bind', '127.0.0.22:0', '--http', '127.0.0.1:0', '--advertise', '127.0.0.1:0', '--join', a.gossip])
      assert.equal(r.code, 2)
      assert.match(r.stderr, /--advertise/)
      assert.ok(running(a) && running(b))
    })

    test('2. a suspect claim at incarnation 2^52 is refused; the victim stays alive', async () => {
      await sendUdp(a, message(hdr(MessageType.MemberGossip), (w) => writeUpdates(w, [{ status: MemberStatus.Suspect, name: b.name, incarnation: 2 ** 52, by: 'mallory' }])))
      if (!encrypted) assert.ok(await waitFor(async () => ((await counters(a, 'grapevine_dropped')).get('claim-refused') ?? 0) >= 1, 5000), 'claim-refused counted')
      await sleep(1000)
      const members = (await getJson(a, '/v1/members')) as { name: string; status: string; incarnation: number }[]
      const seen = members.find((m) => m.name === b.name)
      assert.equal(seen?.status, 'alive')
      assert.ok(seen!.incarnation < incarnationCeiling(Date.now()), `incarnation ${seen!.incarnation}`)
    })

    test('3. a forged Reset, Delta and push about every origin delete nothing and hide no write', async () => {
      // An attacker learns the origins as any peer would: a Probe whose fingerprints differ is answered with a digest page.
      answers.length = 0
      await sendUdp(a, message(hdr(MessageType.Probe), (w) => w.u32(1).u32(2).u32(3).u32(4).u32(5).u32(6)))
      await waitFor(() => answers.length > 0, encrypted ? 500 : 5000)
      let origins: string[] = []
      for (const bytes of answers) {
        try {
          const m = decodeMessage(bytes, DEFAULT_LIMITS, 65_535)
          if (m.type === MessageType.Digest) origins = [...m.page.rows.keys()]
        } catch {
          // sealed (encrypted mode): the attacker cannot read it and must guess
        }
      }
      if (!encrypted) assert.ok(origins.length >= 2, `origins learnt: ${origins.join(' ')}`)
      else origins = [`${a.name}~1`, `${b.name}~1`]
      const ahead = hlcFromPhysicalMs(Date.now() + 50_000)
      const wms = origins.map((o): [string, number] => [o, ahead])
      await sendTcp(a, message(hdr(MessageType.Reset), (w) => {
        writeOriginMap(w, wms)
        writeOriginMap(w, wms)
        w.varint(0)
      }))
      await sendUdp(a, message(hdr(MessageType.Delta), (w) => writeSegments(w, origins.map((o) => ({ origin: o, upTo: ahead, entries: [] })))))
      const bOrigin = origins.find((o) => o.startsWith(`${b.name}~`)) ?? origins[0]!
      const forged: RawEntry = { key: 'forged/now', ts: hlcFromPhysicalMs(Date.now()), value: 'x' }
      await sendUdp(a, message(hdr(MessageType.Push), (w) => {
        w.varint(0).varint(0).string(bOrigin)
        writeEntry(w, forged)
      }))
      if (!encrypted) assert.ok(await waitFor(async () => ((await counters(a, 'grapevine_dropped')).get('watermark-refused') ?? 0) >= 2 * origins.length, 5000), 'the claims are refused and counted')
      for (const [k, v] of honest) assert.equal(await valueOf(a, k), v, `${k} is still on ${a.name}`)
      // Writes made now on B reach A (before the fix, A believed B's origin covered for the next 50 s).
      for (let i = 0; i < 3; i++) {
        assert.equal(await put(b, `after-reset/${i}`, `r${i}`), 200)
        honest.set(`after-reset/${i}`, `r${i}`)
      }
      assert.ok(await waitFor(async () => (await valueOf(a, 'after-reset/2')) === 'r2', 15_000), 'a write after the forged claims crosses')
    })

    test('4. sixteen trickling streams do not keep a real transfer out; four of 60 MiB stay under the memory cap', async () => {
      const trickle = slowloris(a.gossip, ATTACKER, 16)
      try {
        await sleep(1000)
        const big = 'x'.repeat(20_000)
        assert.equal(await put(b, 'big', big), 200)
        honest.set('big', big)
        assert.ok(await waitFor(async () => (await valueOf(a, 'big')) === big, 30_000), 'the 20 KB value (a stream) crosses during the attack')
      } finally {
        await trickle.stop()
      }
      const refusals = await counters(a, 'grapevine_stream_refusals')
      assert.ok((refusals.get('per-ip-cap') ?? 0) > 0, `per-ip-cap refusals: ${JSON.stringify([...refusals])}`)

      const rss0 = rssBytes(a)
      const declared = 60 * (1 << 20)
      const { host, port } = parseHostPort(a.gossip, 'gossip')
      const chunk = Buffer.alloc(1 << 20)
      await Promise.all(
        [2, 3, 4, 5].map(async (i) => {
          const s = net.connect({ host, port, localAddress: `127.0.0.${i}` })
          s.on('error', () => undefined)
          await new Promise<void>((resolve) => {
            s.once('connect', resolve)
            s.once('close', resolve)
          })
          s.write(lengthHeader(declared))
          await sendAllButLast(s, declared, chunk)
          s.destroy()
        }),
      )
      const grew = rssBytes(a) - rss0
      // Two streams of 60 MiB may be buffered at once (the cap is 128 MiB); before, all four were (+490 MB).
      assert.ok(grew < 160 * (1 << 20), `RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`)
      assert.ok(running(a))
    })

    test('5. cross-site, rebinding and token-less HTTP requests are refused; key material is never served', async () => {
      const evilKey = generateKey()
      const install = await rawRequest(a.http, 'POST', '/v1/keyring/install', { headers: { 'content-type': 'text/plain', origin: 'http://evil.example' }, body: JSON.stringify({ key: evilKey }) })
      assert.equal(install.status, 403)
      const plain = await rawRequest(a.http, 'POST', '/v1/keyring/install', { headers: { ...auth, 'content-type': 'text/plain' }, body: JSON.stringify({ key: evilKey }) })
      assert.equal(plain.status, 415)
      const rebound = await rawRequest(a.http, 'GET', '/v1/keyring', { headers: { ...auth, host: `evil.example:${parseHostPort(a.http, 'http').port}` } })
      assert.equal(rebound.status, 421)
      for (const route of ['/v1/kv', '/v1/kv/honest%2F0', '/v1/keyring', '/v1/members', '/v1/watch']) {
        assert.equal((await rawRequest(a.http, 'GET', route)).status, 401, `${route} without the token`)
      }
      const ring = await rawRequest(a.http, 'GET', '/v1/keyring', { headers: auth })
      assert.equal(ring.status, encrypted ? 200 : 409, 'ids only; a plaintext agent has no keyring')
      assert.ok(!ring.text.includes(key) && !ring.text.includes(evilKey), 'no key material')
      const open = cli(['agent', '--name', 'open', '--bind', '127.0.0.22:0', '--http', '0.0.0.0:0'])
      assert.equal(open.code, 2, 'HTTP on every address without a token is refused')
    })

    test('6. a TTL past its field is a 400; the agent and its snapshot stay readable', async () => {
      const r = await rawRequest(a.http, 'PUT', '/v1/kv/ttl?ttl=99999999999999999999d', { headers: { ...auth, 'content-type': 'text/plain' }, body: 'v' })
      assert.equal(r.status, 400)
      assert.equal((r.json as { code?: string }).code, 'GV_ERR_BAD_TTL')
    })

    test(`7. ${encrypted ? 'a sealed ResetRequest replayed 40 times is answered once' : 'a full transfer is never reflected to a third party'}`, async () => {
      if (encrypted) {
        const insider = new PacketSecurity({ keyring: Keyring.fromBase64([key]), label: '', sessionSalt: randomBytes(SALT_BYTES) })
        const sealed = insider.outgoing(message(hdr(MessageType.ResetRequest, 'insider')))
        const before = (await counters(a, 'grapevine_dropped')).get('replayed') ?? 0
        for (let i = 0; i < 40; i++) {
          await sendUdp(a, sealed)
          await sleep(10)
        }
        assert.ok(await waitFor(async () => ((await counters(a, 'grapevine_dropped')).get('replayed') ?? 0) >= before + 39, 5000), 'replays dropped and counted')
        return
      }
      // A third party that would receive the whole key space.
      let connections = 0
      const third = net.createServer((s) => {
        connections++
        s.destroy()
      })
      await new Promise<void>((resolve) => third.listen(0, '127.0.0.1', resolve))
      const port = (third.address() as net.AddressInfo).port
      try {
        for (let i = 0; i < 5; i++) await sendUdp(a, message(hdr(MessageType.ResetRequest, b.name, `127.0.0.1:${port}`)))
        await sleep(2000)
        assert.equal(connections, 0, 'no transfer to the third party')
      } finally {
        third.close()
      }
    })

    test('8. watch clients beyond the cap get 429; clients that never read are cut', async () => {
      const { host, port } = parseHostPort(a.http, 'http')
      const stuck: http.ClientRequest[] = []
      const cut: boolean[] = []
      for (let i = 0; i < 4; i++) {
        const req = http.request({ host, port, path: '/v1/watch?prefix=load/', headers: auth, agent: false })
        req.on('error', () => undefined)
        req.on('response', (res) => {
          res.pause()
          res.on('close', () => (cut[i] = true))
        })
        req.end()
        stuck.push(req)
      }
      await sleep(300)
      const over = await rawRequest(a.http, 'GET', '/v1/watch', { headers: auth })
      assert.equal(over.status, 429)
      const value = 'w'.repeat(60_000)
      for (let i = 0; i < 300; i++) await put(a, `load/${i}`, value)
      const refused = await waitFor(async () => ((await counters(a, 'grapevine_http_refused')).get('slow-consumer') ?? 0) >= 4, 15_000)
      for (const r of stuck) r.destroy()
      assert.ok(refused, 'the four slow clients are cut')
      for (let i = 0; i < 300; i++) await rawRequest(a.http, 'DELETE', `/v1/kv/load%2F${i}`, { headers: auth })
    })

    test('9. a flood of 20,000 made-up members is bounded and the agent keeps answering', async () => {
      const t0 = Date.now()
      for (let d = 0; d < 400; d++) {
        const updates = Array.from({ length: 50 }, (_, i) => ({ status: MemberStatus.Alive, name: `fake-${mode}-${d}-${i}`, incarnation: 1, address: `127.0.0.9:${10_000 + ((d * 50 + i) % 50_000)}`, generation: 1 }))
        await sendUdp(a, message(hdr(MessageType.MemberGossip), (w) => writeUpdates(w, updates)))
      }
      const health = await rawRequest(a.http, 'GET', '/v1/health')
      assert.equal(health.status, 200)
      const members = (await getJson(a, '/v1/members')) as unknown[]
      assert.ok(members.length <= 2 + 256 * Math.ceil((Date.now() - t0 + 1000) / 200), `${members.length} members admitted`)
    })

    test('10. a path with .. is refused; the data dir is private', async () => {
      assert.equal((await rawRequest(a.http, 'GET', '/v1/kv/x/../honest%2F0', { headers: auth })).status, 400)
      assert.equal(statSync(path.join(dir, 'a')).mode & 0o777, 0o700)
    })

    test('after all of them: both agents up, each sees the other alive, data held, new writes spread both ways, a restart keeps the data', async () => {
      assert.ok(running(a) && running(b), `running: a ${running(a)}, b ${running(b)}`)
      const seesAlive = async (x: AgentProcess, other: AgentProcess): Promise<boolean> => ((await getJson(x, '/v1/members')) as { name: string; status: string }[] | undefined)?.some((m) => m.name === other.name && m.status === 'alive') ?? false
      assert.ok(await waitFor(async () => (await seesAlive(a, b)) && (await seesAlive(b, a)), 30_000), 'each sees the other alive')
      assert.equal(await put(a, 'final/a', 'from-a'), 200)
      assert.equal(await put(b, 'final/b', 'from-b'), 200)
      honest.set('final/a', 'from-a').set('final/b', 'from-b')
      const held = async (x: AgentProcess): Promise<string[]> => {
        const missing: string[] = []
        for (const [k, v] of honest) if ((await valueOf(x, k)) !== v) missing.push(k)
        return missing
      }
      assert.ok(await waitFor(async () => (await held(a)).length === 0 && (await held(b)).length === 0, 45_000), `missing on a: ${(await held(a)).join(' ')}; on b: ${(await held(b)).join(' ')}`)
      // The snapshot written after all this reads back.
      await stopAgent(a)
      a = await startAgent(`atk-a-${mode}`, [...flags, '--bind', '127.0.0.20:0', '--data-dir', path.join(dir, 'a'), '--join', b.gossip])
      assert.deepEqual(await held(a), [], 'the restarted agent holds the data from its snapshot')
    })
  })
}
