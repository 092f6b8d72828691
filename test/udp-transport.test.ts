/**
 * The real transport on loopback: a burst of datagrams is paced so that a
 * receiver in the same process reads them all instead of overflowing its
 * receive queue (unpaced, a 1,000-datagram burst lost about three quarters
 * here).
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { UdpTransport } from '../src/runtime/udp-transport.js'
import { waitFor } from '../src/util/wait.js'

const options = { maxPacketBytes: 1400, maxStreamBytes: 1 << 20, streamTimeoutMs: 5000, maxConcurrentStreams: 4 }

describe('UDP transport', () => {
  test('a burst of 1,000 full datagrams to a receiver in the same process arrives whole', async () => {
    let received = 0
    const errors: string[] = []
    const rx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, {
      onMessage: () => received++,
      onError: (err, ctx) => errors.push(`${ctx}: ${err.message}`),
    })
    const tx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, {
      onMessage: () => {},
      onError: (err, ctx) => errors.push(`${ctx}: ${err.message}`),
    })
    try {
      const payload = Buffer.alloc(1400, 7)
      const to = `127.0.0.1:${rx.bound.port}`
      for (let i = 0; i < 1000; i++) tx.send(to, payload)
      await waitFor(() => received >= 1000, 10_000)
      assert.ok(received >= 990, `received ${received} of 1000 (receive buffer ${rx.recvBufferBytes} bytes)`)
      assert.equal(tx.sendQueueDrops, 0)
      assert.deepEqual(errors, [])
      assert.ok(rx.recvBufferBytes > 0)
    } finally {
      await Promise.all([rx.close(), tx.close()])
    }
  })
})

describe('UDP transport streams', () => {
  test('outbound stream transfers are bounded: beyond the limit they are dropped and counted, the rest arrive', async () => {
    const got: number[] = []
    const rx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, { onMessage: (_f, b) => got.push(b.length), onError: () => {} })
    const tx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, { onMessage: () => {}, onError: () => {} })
    try {
      const to = `127.0.0.1:${rx.bound.port}`
      for (let i = 0; i < 10; i++) tx.sendStream(to, Buffer.alloc(10_000 + i))
      assert.equal(tx.streamSendDrops, 10 - options.maxConcurrentStreams)
      assert.ok(await waitFor(() => got.length === options.maxConcurrentStreams, 5000), `received ${got.length}`)
      // Once they completed, new transfers go again.
      assert.ok(await waitFor(() => (tx as unknown as { outboundStreams: number }).outboundStreams === 0, 5000))
      tx.sendStream(to, Buffer.alloc(123))
      assert.ok(await waitFor(() => got.includes(123), 5000))
    } finally {
      await Promise.all([rx.close(), tx.close()])
    }
  })

  test('a stream to a peer that is gone is an error reported and counted, and sending goes on', async () => {
    const errors: string[] = []
    let received = 0
    const gone = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, { onMessage: () => {}, onError: () => {} })
    const goneAddress = `127.0.0.1:${gone.bound.port}`
    await gone.close()
    const rx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, { onMessage: () => received++, onError: () => {} })
    const tx = await UdpTransport.open({ host: '127.0.0.1', port: 0 }, options, {
      onMessage: () => {},
      onError: (err) => errors.push((err as NodeJS.ErrnoException).code ?? err.message),
    })
    try {
      tx.sendStream(goneAddress, Buffer.alloc(5000, 1))
      tx.send(goneAddress, Buffer.alloc(100, 1))
      assert.ok(await waitFor(() => errors.length > 0, 5000), 'the refused connection is reported')
      assert.ok(errors.includes('ECONNREFUSED'), errors.join(' '))
      tx.send(`127.0.0.1:${rx.bound.port}`, Buffer.alloc(100, 2))
      tx.sendStream(`127.0.0.1:${rx.bound.port}`, Buffer.alloc(5000, 2))
      assert.ok(await waitFor(() => received === 2, 5000), 'the transport still sends datagrams and streams')
    } finally {
      await Promise.all([rx.close(), tx.close()])
    }
  })
})
