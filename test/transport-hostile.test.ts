/**
 * The real transport against hostile peers, on loopback: a bad target never
 * throws out of `send`/`sendStream`; inbound streams that stall, trickle,
 * crowd from one IP, declare more than memory allows or fail to
 * authenticate are cut and counted, while honest streams still get through.
 * Loopback aliases (127.0.0.2...) act as distinct source IPs.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import { after, describe, test } from 'node:test'
import { type StreamAuthenticator, type StreamRefusal, type TransportOptions, UdpTransport } from '../src/runtime/udp-transport.js'
import { waitFor } from '../src/util/wait.js'
import { frame, sendAllButLast } from './helpers/stream-attack.js'

const base: TransportOptions = {
  maxPacketBytes: 1400,
  maxStreamBytes: 4 << 20,
  streamTimeoutMs: 5000,
  maxConcurrentStreams: 16,
  streamHeaderTimeoutMs: 200,
  streamRateWindowMs: 200,
  minStreamBytesPerSec: 64 * 1024,
  maxStreamsPerIp: 4,
}

function refusals(t: UdpTransport, reason: StreamRefusal): number {
  return t.streamRefusals.get(reason) ?? 0
}

/** A raw TCP client from `localAddress`; resolves once connected (or failed). */
async function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress })
  s.on('error', () => {})
  await new Promise<void>((resolve) => {
    s.once('connect', () => resolve())
    s.once('close', () => resolve())
  })
  return s
}


describe('transport sends never throw', () => {
  test('port 0, port 70000, a garbage host, IPv6 to an IPv4 socket: refused, reported and counted', async () => {
    const errors: string[] = []
    const t = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, base, {
      onMessage: () => {},
      onError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? 'none'),
    })
    try {
      const targets = ['127.0.0.1:0', '127.0.0.1:70000', 'no such host!!:5000', '[::1]:5000', 'nonsense', ':7946', '[::1', '127.0.0.1:-1']
      for (const to of targets) {
        assert.doesNotThrow(() => t.send(to, Buffer.from('x')), `send ${to}`)
        assert.doesNotThrow(() => t.sendStream(to, Buffer.from('x')), `sendStream ${to}`)
      }
      assert.equal(t.sendErrors.get('GV_ERR_BAD_ADDRESS'), 2 * (targets.length - 1))
      assert.equal(t.sendErrors.get('GV_ERR_ADDRESS_FAMILY'), 2)
      assert.equal(errors.length, 2 * targets.length)
      // The transport still works.
      let got = 0
      const rx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, base, { onMessage: () => got++, onError: () => {} })
      try {
        t.send(`127.0.0.1:${rx.bound.port}`, Buffer.from('y'))
        t.sendStream(`127.0.0.1:${rx.bound.port}`, Buffer.alloc(5000))
        assert.ok(await waitFor(() => got === 2, 5000))
      } finally {
        await rx.close()
      }
    } finally {
      await t.close()
    }
  })

  test('a handler that throws is reported, not let out of the socket event', async () => {
    const errors: string[] = []
    const rx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, base, {
      onMessage: () => {
        throw new Error('handler bug')
      },
      onError: (err) => errors.push(err.message),
    })
    const tx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, base, { onMessage: () => {}, onError: () => {} })
    try {
      tx.send(`127.0.0.1:${rx.bound.port}`, Buffer.from('x'))
      tx.sendStream(`127.0.0.1:${rx.bound.port}`, Buffer.alloc(3000))
      assert.ok(await waitFor(() => errors.length === 2, 5000), errors.join())
    } finally {
      await Promise.all([rx.close(), tx.close()])
    }
  })
})

describe('inbound streams against hostile peers', () => {
  const open: UdpTransport[] = []
  const clients: net.Socket[] = []
  after(async () => {
    for (const c of clients) c.destroy()
    await Promise.all(open.map((t) => t.close()))
  })

  async function receiver(options: Partial<TransportOptions> = {}): Promise<{ t: UdpTransport; got: Buffer[] }> {
    const got: Buffer[] = []
    const t = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, { ...base, ...options }, { onMessage: (_f, b) => got.push(b), onError: () => {} })
    open.push(t)
    return { t, got }
  }

  async function client(port: number, localAddress?: string): Promise<net.Socket> {
    const s = await connect(port, localAddress)
    clients.push(s)
    return s
  }

  test('no length within the header timeout: closed as header-timeout', async () => {
    const { t } = await receiver()
    const s = await client(t.bound.port)
    s.write(Buffer.from([0]))
    assert.ok(await waitFor(() => s.destroyed || s.readableEnded, 5000), 'the connection is closed')
    assert.ok(await waitFor(() => refusals(t, 'header-timeout') === 1, 5000))
  })

  test('a body trickling slower than the minimum rate: closed as too-slow', async () => {
    const { t } = await receiver()
    const s = await client(t.bound.port)
    s.write(frame(1 << 20))
    // A byte every 20 ms is 50 B/s, far below 64 KiB/s; the loop stops once the receiver closes it (bounded anyway).
    for (let i = 0; i < 500 && !s.destroyed && !s.readableEnded && refusals(t, 'too-slow') === 0; i++) {
      s.write(Buffer.from([1]))
      await new Promise((r) => setTimeout(r, 20))
    }
    assert.equal(refusals(t, 'too-slow'), 1)
    assert.equal(t.streamBufferedBytes, 0, 'its reservation is released')
  })

  test('one IP holds at most maxStreamsPerIp streams; another IP still gets in', async () => {
    const { t, got } = await receiver({ streamHeaderTimeoutMs: 10_000 })
    for (let i = 0; i < 6; i++) await client(t.bound.port, '127.0.0.2')
    assert.ok(await waitFor(() => refusals(t, 'per-ip-cap') === 2, 5000), `per-ip-cap ${refusals(t, 'per-ip-cap')}`)
    const honest = await client(t.bound.port, '127.0.0.3')
    honest.end(Buffer.concat([frame(3000), Buffer.alloc(3000, 7)]))
    assert.ok(await waitFor(() => got.some((b) => b.length === 3000), 5000), 'the other IP delivered its message')
  })

  test('all slots taken: refused as slots-full', async () => {
    const { t } = await receiver({ maxConcurrentStreams: 2, streamHeaderTimeoutMs: 10_000 })
    await client(t.bound.port, '127.0.0.4')
    await client(t.bound.port, '127.0.0.5')
    await client(t.bound.port, '127.0.0.6')
    assert.ok(await waitFor(() => refusals(t, 'slots-full') === 1, 5000))
  })

  test('streams declaring more than the memory cap allows are refused; buffered bytes never exceed it', async () => {
    const cap = 8 << 20
    const { t, got } = await receiver({ maxStreamBufferBytes: cap, streamRateWindowMs: 5000 })
    const declared = 3.5 * (1 << 20)
    const chunk = Buffer.alloc(256 * 1024)
    // Each sends all but its last byte, and finishes only once the receiver has taken or refused all six: exactly two fit.
    let release!: () => void
    const allSent = new Promise<void>((resolve) => (release = resolve))
    const senders = [2, 3, 4, 5, 6, 7].map((i) => {
      return (async () => {
        const s = await client(t.bound.port, `127.0.0.${10 + i}`)
        s.write(frame(declared))
        await sendAllButLast(s, declared, chunk)
        await allSent
        if (!s.destroyed) s.end(Buffer.alloc(1))
      })()
    })
    const settled = await waitFor(() => refusals(t, 'memory-cap') + t.streamBufferedBytes / declared === 6, 10_000)
    release()
    await Promise.all(senders)
    assert.ok(settled, `refused ${refusals(t, 'memory-cap')}, reserved ${t.streamBufferedBytes}`)
    assert.ok(await waitFor(() => got.length + refusals(t, 'memory-cap') === 6, 10_000), `delivered ${got.length}, refused ${refusals(t, 'memory-cap')}`)
    assert.equal(refusals(t, 'memory-cap'), 4)
    assert.equal(got.length, 2)
    assert.ok(t.peakStreamBufferedBytes <= cap, `peak ${t.peakStreamBufferedBytes}`)
    assert.ok(t.peakStreamBufferedBytes >= declared)
    assert.ok(await waitFor(() => t.streamBufferedBytes === 0, 5000))
  })

  test('oversized, overlong and truncated streams are refused by reason', async () => {
    const { t, got } = await receiver()
    const big = await client(t.bound.port)
    big.write(frame(base.maxStreamBytes + 1))
    const long = await client(t.bound.port, '127.0.0.20')
    long.end(Buffer.concat([frame(10), Buffer.alloc(20)]))
    const short = await client(t.bound.port, '127.0.0.21')
    short.end(Buffer.concat([frame(10), Buffer.alloc(5)]))
    assert.ok(await waitFor(() => refusals(t, 'oversized') === 1 && refusals(t, 'overlong') === 1 && refusals(t, 'truncated') === 1, 5000), JSON.stringify([...t.streamRefusals]))
    assert.equal(got.length, 0)
  })

  test('with an authenticator, a stream whose preamble fails is refused before its body is buffered', async () => {
    const opened: Buffer[] = []
    const auth: StreamAuthenticator = {
      preambleBytes: (first) => (first === 0x68 ? 8 : undefined),
      openPreamble: (_from, p) => {
        opened.push(p)
        return p.subarray(0, 4).equals(Buffer.from('h-ok')) ? { ok: true, bodyLength: p.readUInt32BE(4) } : { ok: false }
      },
    }
    const { t, got } = await receiver({ streamAuthenticator: auth })
    const forged = await client(t.bound.port)
    forged.write(Buffer.concat([frame(8 + 1_000_000), Buffer.from('h-no'), frame(1_000_000), Buffer.alloc(1000)]))
    const plain = await client(t.bound.port)
    plain.write(Buffer.concat([frame(100), Buffer.alloc(100, 0x67)]))
    assert.ok(await waitFor(() => refusals(t, 'unauthenticated-header') === 2, 5000))
    assert.equal(t.peakStreamBufferedBytes, 0, 'nothing was reserved for either body')
    // A preamble that opens, but whose length disagrees with the frame's: refused too.
    const lying = await client(t.bound.port)
    lying.write(Buffer.concat([frame(8 + 50), Buffer.from([0x68, 0x2d, 0x6f, 0x6b]), frame(10)]))
    assert.ok(await waitFor(() => refusals(t, 'unauthenticated-header') === 3, 5000))
    // An honest one: the body alone is delivered.
    const honest = await client(t.bound.port)
    honest.end(Buffer.concat([frame(8 + 5000), Buffer.from([0x68, 0x2d, 0x6f, 0x6b]), frame(5000), Buffer.alloc(5000, 3)]))
    assert.ok(await waitFor(() => got.length === 1, 5000))
    assert.equal(got[0]!.length, 5000)
  })
})
