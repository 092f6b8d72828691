import dgram from 'node:dgram'
import net from 'node:net'
import { type HostPort, formatHostPort, parseHostPort } from './address.js'
import type { Transport, TransportHandlers } from './transport.js'


export interface TransportOptions {
  readonly maxPacketBytes: number
  readonly maxStreamBytes: number
  /** Abort a stream transfer that makes no progress for this long. */
  readonly streamTimeoutMs: number
  /** At most this many inbound streams at once (more are refused), and as many outbound (more are dropped, counted). */
  readonly maxConcurrentStreams: number
}

const FRAME_HEADER = 4

/** Tries at binding UDP and TCP to one OS-chosen port. */
const PORT_ZERO_ATTEMPTS = 5
/**
 * Datagrams handed to the socket per turn of the event loop. A burst (a
 * reset to many peers, a dissemination round at 10,000 nodes) is spread over
 * turns, so receivers, the one in this very process included, get to read
 * between batches instead of overflowing their receive queues.
 */
const SEND_BATCH = 32
/** Datagrams waiting to be sent at most; beyond that they are dropped and counted. */
const MAX_SEND_QUEUE = 16_384
/** Socket buffers asked for (the kernel may cap them at its maximum; the bound size is reported). */
const SOCKET_BUFFER_BYTES = 4 * 1024 * 1024

/**
 * The real network: UDP datagrams for gossip, and one-message TCP streams
 * (a 4-byte big-endian length, then the message) for transfers larger than a
 * datagram. Both listen on the same port number.
 */
export class UdpTransport implements Transport {
  /** Datagrams waiting for their turn (see SEND_BATCH). */
  private readonly sendQueue: { bytes: Buffer; target: HostPort; to: string }[] = []
  private draining = false
  /** Datagrams dropped because the send queue was full. */
  sendQueueDrops = 0
  private outboundStreams = 0
  /** Stream transfers not started because `maxConcurrentStreams` were already under way. */
  streamSendDrops = 0
  /** Receive and send buffer sizes the kernel granted. */
  recvBufferBytes = 0
  sendBufferBytes = 0
  private readonly udp: dgram.Socket
  private readonly tcp: net.Server
  private readonly sockets = new Set<net.Socket>()
  private inboundStreams = 0
  private closed = false
  /** The address actually bound (port 0 resolved). */
  bound: HostPort

  private constructor(
    bind: HostPort,
    private readonly options: TransportOptions,
    private readonly handlers: TransportHandlers,
  ) {
    this.bound = bind
    const family = net.isIPv6(bind.host) ? 'udp6' : 'udp4'
    this.udp = dgram.createSocket({ type: family, reuseAddr: false })
    this.udp.on('message', (msg, rinfo) => {
      this.handlers.onMessage(formatHostPort(rinfo.address, rinfo.port), msg, false)
    })
    this.udp.on('error', (err) => this.handlers.onError(err, 'udp socket'))
    this.tcp = net.createServer((socket) => this.acceptStream(socket))
    this.tcp.on('error', (err) => this.handlers.onError(err, 'tcp listener'))
  }

  /**
   * Binds UDP, then TCP on the same port. With port 0 the OS picks the UDP
   * port, which TCP may find taken (an outgoing connection's local port):
   * then it tries again with another, a few times.
   */
  static async open(bind: HostPort, options: TransportOptions, handlers: TransportHandlers): Promise<UdpTransport> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await UdpTransport.openOnce(bind, options, handlers)
      } catch (err) {
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
        if (bind.port !== 0 || !inUse || attempt >= PORT_ZERO_ATTEMPTS) throw err
      }
    }
  }

  private static async openOnce(bind: HostPort, options: TransportOptions, handlers: TransportHandlers): Promise<UdpTransport> {
    const t = new UdpTransport(bind, options, handlers)
    await new Promise<void>((resolve, reject) => {
      t.udp.once('error', reject)
      t.udp.bind(bind.port, bind.host, () => {
        t.udp.off('error', reject)
        resolve()
      })
    })
    t.sizeBuffers()
    const port = t.udp.address().port
    await new Promise<void>((resolve, reject) => {
      t.tcp.once('error', reject)
      t.tcp.listen(port, bind.host, () => {
        t.tcp.off('error', reject)
        resolve()
      })
    }).catch((err: unknown) => {
      t.udp.close()
      throw err
    })
    t.bound = { host: bind.host, port }
    return t
  }

  /** Asks for large socket buffers; the kernel grants at most its configured maximum. */
  private sizeBuffers(): void {
    try {
      this.udp.setRecvBufferSize(SOCKET_BUFFER_BYTES)
      this.udp.setSendBufferSize(SOCKET_BUFFER_BYTES)
    } catch (err) {
      this.handlers.onError(err as Error, 'socket buffer size')
    }
    this.recvBufferBytes = this.udp.getRecvBufferSize()
    this.sendBufferBytes = this.udp.getSendBufferSize()
  }

  /** Parses a peer address; a bad one is reported and yields undefined. */
  private target(to: string): HostPort | undefined {
    if (this.closed) return undefined
    try {
      return parseHostPort(to, 'peer address')
    } catch (err) {
      this.handlers.onError(err as Error, `bad peer address ${to}`)
      return undefined
    }
  }

  send(to: string, bytes: Buffer): void {
    const target = this.target(to)
    if (target === undefined) return
    if (this.sendQueue.length >= MAX_SEND_QUEUE) {
      this.sendQueueDrops++
      return
    }
    this.sendQueue.push({ bytes, target, to })
    if (!this.draining) {
      this.draining = true
      this.drain()
    }
  }

  /**
   * Sends one batch; the next goes once the socket has taken this one (the
   * send callbacks ran) and the event loop has had a turn, so receivers get
   * to read in between. libuv queues sends, so batching alone would not pace.
   */
  private drain(): void {
    const batch = this.sendQueue.splice(0, SEND_BATCH)
    let pending = batch.length
    const next = (): void => {
      if (this.sendQueue.length > 0 && !this.closed) setImmediate(() => this.drain())
      else this.draining = false
    }
    if (pending === 0 || this.closed) {
      this.draining = false
      return
    }
    for (const { bytes, target, to } of batch) {
      this.udp.send(bytes, target.port, target.host, (err) => {
        if (err) this.handlers.onError(err, `udp send to ${to}`)
        if (--pending === 0) next()
      })
    }
  }

  sendStream(to: string, bytes: Buffer): void {
    const target = this.target(to)
    if (target === undefined) return
    if (this.outboundStreams >= this.options.maxConcurrentStreams) {
      // The engine retries what matters (anti-entropy comes round again); a flood of transfers must not exhaust sockets.
      this.streamSendDrops++
      return
    }
    this.outboundStreams++
    const socket = net.connect({ host: target.host, port: target.port })
    socket.once('close', () => this.outboundStreams--)
    this.sockets.add(socket)
    socket.setTimeout(this.options.streamTimeoutMs, () => socket.destroy(new Error('stream send timed out')))
    socket.on('error', (err) => this.handlers.onError(err, `stream to ${to}`))
    socket.on('close', () => this.sockets.delete(socket))
    const header = Buffer.allocUnsafe(FRAME_HEADER)
    header.writeUInt32BE(bytes.length, 0)
    socket.write(header)
    socket.end(bytes)
  }

  private acceptStream(socket: net.Socket): void {
    if (this.closed || this.inboundStreams >= this.options.maxConcurrentStreams) {
      socket.destroy()
      return
    }
    this.inboundStreams++
    this.sockets.add(socket)
    const from = formatHostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0)
    const chunks: Buffer[] = []
    let received = 0
    let expected = -1
    let done = false
    socket.setTimeout(this.options.streamTimeoutMs, () => socket.destroy(new Error('stream receive timed out')))
    socket.on('data', (chunk: Buffer) => {
      if (done) return
      received += chunk.length
      chunks.push(chunk)
      if (expected < 0 && received >= FRAME_HEADER) {
        expected = Buffer.concat(chunks).readUInt32BE(0)
        if (expected > this.options.maxStreamBytes) {
          done = true
          socket.destroy(new Error(`stream of ${expected} bytes exceeds maxStreamBytes`))
          return
        }
      }
      if (expected >= 0 && received > FRAME_HEADER + expected) {
        done = true
        socket.destroy(new Error('stream longer than its declared length'))
      }
    })
    socket.on('end', () => {
      if (done) return
      done = true
      const all = Buffer.concat(chunks)
      if (expected >= 0 && all.length === FRAME_HEADER + expected) {
        this.handlers.onMessage(from, all.subarray(FRAME_HEADER), true)
      } else {
        this.handlers.onError(new Error('stream ended before its declared length'), `stream from ${from}`)
      }
      socket.end()
    })
    socket.on('error', (err) => this.handlers.onError(err, `stream from ${from}`))
    socket.on('close', () => {
      this.inboundStreams--
      this.sockets.delete(socket)
    })
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const s of this.sockets) s.destroy()
    await Promise.all([
      new Promise<void>((resolve) => this.udp.close(() => resolve())),
      new Promise<void>((resolve) => this.tcp.close(() => resolve())),
    ])
  }
}
