import dgram from 'node:dgram'
import net from 'node:net'
import { type HostPort, formatHostPort, isHostName, parseHostPort } from './address.js'
import type { Transport, TransportHandlers } from './transport.js'


export interface TransportOptions {
  readonly maxPacketBytes: number
  /** The largest stream message accepted (its declared length is checked before anything is buffered). */
  readonly maxStreamBytes: number
  /** Abort a stream transfer that makes no progress for this long. */
  readonly streamTimeoutMs: number
  /** At most this many inbound streams at once (more are refused), and as many outbound (more are dropped, counted). */
  readonly maxConcurrentStreams: number
  /** Close an inbound stream whose 4-byte length (and sealed preamble) is not in this long after accept (default 2000). */
  readonly streamHeaderTimeoutMs?: number
  /** Close an inbound stream whose body arrives slower than this, averaged over `streamRateWindowMs` (default 64 KiB/s). */
  readonly minStreamBytesPerSec?: number
  /** The window the minimum rate is averaged over (default 5000 ms). */
  readonly streamRateWindowMs?: number
  /** At most this many inbound streams at once from one IP address (default 4). */
  readonly maxStreamsPerIp?: number
  /** Bytes buffered across all inbound streams at most (default 2 × maxStreamBytes). */
  readonly maxStreamBufferBytes?: number
  /** With packet security: authenticates a sealed stream's preamble before its body is buffered. */
  readonly streamAuthenticator?: StreamAuthenticator
}

/**
 * What the transport asks of packet security to authenticate a stream
 * before buffering it (PROTOCOL.md, "Sealed streams"). Narrow on purpose:
 * the transport knows neither keys nor the envelope format.
 */
export interface StreamAuthenticator {
  /** Preamble bytes a message starting with `firstByte` begins with: 0 none (accepted as it is), undefined refused. */
  preambleBytes(firstByte: number): number | undefined
  /** Opens a preamble (single use); on success the length of the body that must follow it. */
  openPreamble(from: string, preamble: Buffer): { readonly ok: true; readonly bodyLength: number } | { readonly ok: false }
}

/** Why an inbound stream was refused or cut; each is a counter (`UdpTransport.streamRefusals`). */
export type StreamRefusal =
  /** `maxConcurrentStreams` inbound streams were already open. */
  | 'slots-full'
  /** `maxStreamsPerIp` inbound streams from that IP were already open. */
  | 'per-ip-cap'
  /** The length (and sealed preamble) did not arrive within `streamHeaderTimeoutMs`. */
  | 'header-timeout'
  /** The body arrived slower than `minStreamBytesPerSec` over a window. */
  | 'too-slow'
  /** No byte for `streamTimeoutMs`. */
  | 'idle-timeout'
  /** Buffering the declared body would exceed `maxStreamBufferBytes`. */
  | 'memory-cap'
  /** A declared length over `maxStreamBytes`. */
  | 'oversized'
  /** More bytes than declared. */
  | 'overlong'
  /** The sender closed before the declared length (or declared 0). */
  | 'truncated'
  /** Encrypted: the preamble did not authenticate, announced another length, or was missing. */
  | 'unauthenticated-header'

/** Why a send was refused before reaching the socket (reported to `onError` with this code, and counted). */
export const BAD_ADDRESS = 'GV_ERR_BAD_ADDRESS'
export const ADDRESS_FAMILY = 'GV_ERR_ADDRESS_FAMILY'

const FRAME_HEADER = 4
const DEFAULT_HEADER_TIMEOUT_MS = 2000
const DEFAULT_MIN_BYTES_PER_SEC = 64 * 1024
const DEFAULT_RATE_WINDOW_MS = 5000
const DEFAULT_STREAMS_PER_IP = 4

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

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

/**
 * The real network: UDP datagrams for gossip, and one-message TCP streams
 * (a 4-byte big-endian length, then the message) for transfers larger than a
 * datagram. Both listen on the same port number.
 *
 * Invariants against hostile peers: `send` and `sendStream` never throw
 * (a bad target or a socket error is reported to `onError` and counted by
 * code); an inbound stream holds a slot only while it makes progress (its
 * header within `streamHeaderTimeoutMs`, then at least
 * `minStreamBytesPerSec`), one IP holds at most `maxStreamsPerIp` slots, and
 * the bytes buffered across all inbound streams never exceed
 * `maxStreamBufferBytes` (a body's declared length is reserved before it is
 * read). With a `streamAuthenticator`, a sealed stream's preamble is
 * authenticated before a byte of its body is buffered.
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
  /** Send failures by code (bad targets refused before the socket, and the socket's own errors). */
  readonly sendErrors = new Map<string, number>()
  /** Inbound streams refused or cut, by reason. */
  readonly streamRefusals = new Map<StreamRefusal, number>()
  /** Bytes reserved for the bodies of inbound streams being read now, and the most ever. */
  streamBufferedBytes = 0
  peakStreamBufferedBytes = 0
  /** Receive and send buffer sizes the kernel granted. */
  recvBufferBytes = 0
  sendBufferBytes = 0
  private readonly udp: dgram.Socket
  private readonly tcp: net.Server
  private readonly family: 4 | 6
  private readonly sockets = new Set<net.Socket>()
  private inboundStreams = 0
  private readonly inboundByIp = new Map<string, number>()
  private readonly headerTimeoutMs: number
  private readonly minBytesPerSec: number
  private readonly rateWindowMs: number
  private readonly streamsPerIp: number
  private readonly bufferCap: number
  private closed = false
  /** The address actually bound (port 0 resolved). */
  bound: HostPort

  private constructor(
    bind: HostPort,
    private readonly options: TransportOptions,
    private readonly handlers: TransportHandlers,
  ) {
    this.bound = bind
    this.family = net.isIPv6(bind.host) ? 6 : 4
    this.headerTimeoutMs = options.streamHeaderTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS
    this.minBytesPerSec = options.minStreamBytesPerSec ?? DEFAULT_MIN_BYTES_PER_SEC
    this.rateWindowMs = options.streamRateWindowMs ?? DEFAULT_RATE_WINDOW_MS
    this.streamsPerIp = options.maxStreamsPerIp ?? DEFAULT_STREAMS_PER_IP
    this.bufferCap = options.maxStreamBufferBytes ?? 2 * options.maxStreamBytes
    this.udp = dgram.createSocket({ type: this.family === 6 ? 'udp6' : 'udp4', reuseAddr: false })
    this.udp.on('message', (msg, rinfo) => this.deliver(formatHostPort(rinfo.address, rinfo.port), msg, false))
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

  /** Hands a message to the node; a throw there is reported, never let out into the socket's event. */
  private deliver(from: string, bytes: Buffer, stream: boolean): void {
    try {
      this.handlers.onMessage(from, bytes, stream)
    } catch (err) {
      this.handlers.onError(err instanceof Error ? err : new Error(String(err)), `handling a message from ${from}`)
    }
  }

  /** A send that failed: counted by code and reported. */
  private sendFailed(err: Error, context: string): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'other'
    this.sendErrors.set(code, (this.sendErrors.get(code) ?? 0) + 1)
    this.handlers.onError(err, context)
  }

  /**
   * Parses and checks a send target: a port of 1-65535 and a host that is
   * an IP literal of the socket's family or a DNS name. A bad one is
   * reported and yields undefined (the socket would throw, synchronously,
   * inside whatever handler asked for the send).
   */
  private target(to: string): HostPort | undefined {
    if (this.closed) return undefined
    let t: HostPort
    try {
      t = parseHostPort(to, 'peer address')
    } catch (err) {
      this.sendFailed(codedError(BAD_ADDRESS, (err as Error).message), `bad peer address ${to}`)
      return undefined
    }
    if (t.port < 1 || t.port > 65535) {
      this.sendFailed(codedError(BAD_ADDRESS, `port ${t.port} is not 1-65535`), `bad peer address ${to}`)
      return undefined
    }
    const ip = net.isIP(t.host)
    if (ip === 0 && !isHostName(t.host)) {
      this.sendFailed(codedError(BAD_ADDRESS, `'${t.host}' is neither an IP address nor a host name`), `bad peer address ${to}`)
      return undefined
    }
    if (ip === 6 && this.family === 4) {
      this.sendFailed(codedError(ADDRESS_FAMILY, `an IPv6 address, and this node is bound to IPv4 ${this.bound.host}`), `peer address ${to}`)
      return undefined
    }
    return t
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
      try {
        this.udp.send(bytes, target.port, target.host, (err) => {
          if (err) this.sendFailed(err, `udp send to ${to}`)
          if (--pending === 0) next()
        })
      } catch (err) {
        // The socket refused synchronously (its callback will not run): counted, and the batch goes on.
        this.sendFailed(err as Error, `udp send to ${to}`)
        if (--pending === 0) next()
      }
    }
  }

  sendStream(to: string, bytes: Buffer): void {
    const target = this.target(to)
    if (target === undefined) return
    if (bytes.length > this.options.maxStreamBytes) {
      this.sendFailed(codedError('GV_ERR_STREAM_TOO_LARGE', `a stream message of ${bytes.length} bytes exceeds maxStreamBytes`), `stream to ${to}`)
      return
    }
    if (this.outboundStreams >= this.options.maxConcurrentStreams) {
      // The engine retries what matters (anti-entropy comes round again); a flood of transfers must not exhaust sockets.
      this.streamSendDrops++
      return
    }
    // Sent from the bound address when it is a specific one, so the peer sees streams and datagrams from one IP.
    const local = this.bound.host !== '0.0.0.0' && this.bound.host !== '::' && net.isIP(target.host) === this.family ? { localAddress: this.bound.host } : {}
    let socket: net.Socket
    try {
      socket = net.connect({ host: target.host, port: target.port, ...local })
    } catch (err) {
      this.sendFailed(err as Error, `stream to ${to}`)
      return
    }
    this.outboundStreams++
    socket.once('close', () => this.outboundStreams--)
    this.sockets.add(socket)
    socket.setTimeout(this.options.streamTimeoutMs, () => socket.destroy(codedError('ETIMEDOUT', 'stream send timed out')))
    socket.on('error', (err) => this.sendFailed(err, `stream to ${to}`))
    socket.on('close', () => this.sockets.delete(socket))
    const header = Buffer.allocUnsafe(FRAME_HEADER)
    header.writeUInt32BE(bytes.length, 0)
    socket.write(header)
    socket.end(bytes)
  }

  private refuse(reason: StreamRefusal): void {
    this.streamRefusals.set(reason, (this.streamRefusals.get(reason) ?? 0) + 1)
  }

  /**
   * Reads one inbound stream: the 4-byte length, then (with an
   * authenticator, for a sealed message) the preamble, authenticated, then
   * the body into one buffer of the declared length reserved against the
   * global cap. No step buffers more than it has proved it may.
   */
  private acceptStream(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy()
      return
    }
    const ip = socket.remoteAddress ?? '?'
    if (this.inboundStreams >= this.options.maxConcurrentStreams) {
      this.refuse('slots-full')
      socket.destroy()
      return
    }
    const fromIp = this.inboundByIp.get(ip) ?? 0
    if (fromIp >= this.streamsPerIp) {
      this.refuse('per-ip-cap')
      socket.destroy()
      return
    }
    this.inboundStreams++
    this.inboundByIp.set(ip, fromIp + 1)
    this.sockets.add(socket)
    const from = formatHostPort(ip, socket.remotePort ?? 0)
    const auth = this.options.streamAuthenticator
    let phase: 'header' | 'preamble' | 'body' | 'done' = 'header'
    const header = Buffer.alloc(FRAME_HEADER)
    let headerFill = 0
    let declared = 0
    let preamble: Buffer | undefined
    let preambleFill = 0
    let body: Buffer | undefined
    let bodyFill = 0
    let reserved = 0
    let windowStart = 0
    let rateTimer: NodeJS.Timeout | undefined

    const release = (): void => {
      clearTimeout(headerTimer)
      if (rateTimer !== undefined) clearInterval(rateTimer)
      rateTimer = undefined
      this.streamBufferedBytes -= reserved
      reserved = 0
      body = undefined
    }
    const abort = (reason: StreamRefusal): void => {
      if (phase === 'done') return
      phase = 'done'
      this.refuse(reason)
      release()
      socket.destroy()
    }
    const headerTimer = setTimeout(() => abort('header-timeout'), this.headerTimeoutMs)
    const startBody = (length: number): void => {
      if (length === 0) return abort('truncated')
      if (this.streamBufferedBytes + length > this.bufferCap) return abort('memory-cap')
      clearTimeout(headerTimer)
      reserved = length
      this.streamBufferedBytes += length
      this.peakStreamBufferedBytes = Math.max(this.peakStreamBufferedBytes, this.streamBufferedBytes)
      body = Buffer.allocUnsafe(length)
      phase = 'body'
      // The body must progress at minBytesPerSec averaged over each window (the last window needs only what is left).
      const perWindow = (this.minBytesPerSec * this.rateWindowMs) / 1000
      rateTimer = setInterval(() => {
        if (phase !== 'body') return
        if (bodyFill - windowStart < Math.min(perWindow, length - windowStart)) abort('too-slow')
        windowStart = bodyFill
      }, this.rateWindowMs)
    }
    const onData = (chunk: Buffer): void => {
      let at = 0
      while (at < chunk.length) {
        if (phase === 'done') return
        if (phase === 'header') {
          const n = Math.min(FRAME_HEADER - headerFill, chunk.length - at)
          chunk.copy(header, headerFill, at, at + n)
          headerFill += n
          at += n
          if (headerFill < FRAME_HEADER) continue
          declared = header.readUInt32BE(0)
          if (declared > this.options.maxStreamBytes) return abort('oversized')
          if (auth === undefined) startBody(declared)
          else phase = 'preamble'
        } else if (phase === 'preamble') {
          if (preamble === undefined) {
            const need = auth!.preambleBytes(chunk[at]!)
            if (need === undefined || need >= declared) return abort('unauthenticated-header')
            if (need === 0) {
              startBody(declared)
              continue
            }
            preamble = Buffer.alloc(need)
          }
          const n = Math.min(preamble.length - preambleFill, chunk.length - at)
          chunk.copy(preamble, preambleFill, at, at + n)
          preambleFill += n
          at += n
          if (preambleFill < preamble.length) continue
          const opened = auth!.openPreamble(from, preamble)
          // The preamble's length is authenticated; the frame's is not: they must agree.
          if (!opened.ok || opened.bodyLength !== declared - preamble.length) return abort('unauthenticated-header')
          startBody(opened.bodyLength)
        } else {
          const n = Math.min(body!.length - bodyFill, chunk.length - at)
          chunk.copy(body!, bodyFill, at, at + n)
          bodyFill += n
          at += n
          if (bodyFill < body!.length) continue
          if (at < chunk.length) return abort('overlong')
          const message = body!
          phase = 'done'
          release()
          socket.end()
          this.deliver(from, message, true)
          return
        }
      }
    }
    socket.setTimeout(this.options.streamTimeoutMs, () => abort('idle-timeout'))
    socket.on('data', (chunk: Buffer) => {
      if (phase === 'done') {
        // Bytes after a delivered message: the sender broke the framing.
        if (chunk.length > 0) socket.destroy()
        return
      }
      onData(chunk)
    })
    socket.on('end', () => {
      if (phase !== 'done') abort('truncated')
    })
    socket.on('error', (err) => this.handlers.onError(err, `stream from ${from}`))
    socket.on('close', () => {
      if (phase !== 'done') {
        phase = 'done'
        release()
      }
      clearTimeout(headerTimer)
      this.inboundStreams--
      const n = (this.inboundByIp.get(ip) ?? 1) - 1
      if (n > 0) this.inboundByIp.set(ip, n)
      else this.inboundByIp.delete(ip)
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
