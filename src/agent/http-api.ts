import http from 'node:http'
import { GrapevineError, InvalidKeyError, ValueTooLargeError } from '../errors.js'
import type { ChangeEvent, Grapevine, KeyValue } from '../node.js'
import type { Value } from '../state/entry.js'
import { parseTtl } from './config.js'
import { HttpError, HttpGuard } from './http-guard.js'
import type { AgentMetrics } from './metrics.js'

/**
 * The agent's HTTP API, versioned under /v1 (docs/http-api.md and
 * docs/openapi.json describe it). JSON in and out, except a PUT body, which
 * is the raw value: text unless sent as application/octet-stream. Every
 * error is `{ code, message }` with a stable code. Every request passes the
 * guard (http-guard.ts) first.
 */
export type KeyringOp = 'install' | 'use' | 'remove'

export interface HttpApiOptions {
  readonly node: Grapevine
  readonly metrics: AgentMetrics
  /** When set, every route but the dashboard page and `/v1/health` needs `Authorization: Bearer <token>`. */
  readonly token?: string
  /** Host names clients may use besides the bound address and `localhost`. */
  readonly allowedHosts?: readonly string[]
  readonly maxValueBytes: number
  readonly maxKeyBytes: number
  /** The dashboard page, served at `/` when given. */
  readonly dashboard?: () => string
  /** Makes a keyring change (the agent writes its keyring file first); by default, on the node only. */
  readonly changeKeyring?: (op: KeyringOp, key: string, force: boolean) => void
  /** Concurrent `/v1/watch` streams at most; one more is a 429. */
  readonly maxWatchers?: number
  /** Bytes a watch stream may have waiting for its client before it is cut as a slow consumer. */
  readonly watchMaxBufferedBytes?: number
  /** How long a cut watch stream has to take its last event before its socket is destroyed. */
  readonly watchDropGraceMs?: number
  /** Period of the comment lines that keep idle watch streams open. */
  readonly watchHeartbeatMs?: number
  /** Longest a client may take to send its request headers. */
  readonly headersTimeoutMs?: number
}

export const DEFAULT_MAX_WATCHERS = 64
export const DEFAULT_WATCH_MAX_BUFFERED_BYTES = 1024 * 1024

/** Heartbeat comments keep idle SSE connections (and proxies) open. */
const SSE_HEARTBEAT_MS = 15_000

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' })
  res.end(text)
}

/** A value for JSON: text as is, bytes as base64 with `valueEncoding`. */
function jsonValue(v: Value): { value: string; valueEncoding?: 'base64' } {
  return typeof v === 'string' ? { value: v } : { value: Buffer.from(v).toString('base64'), valueEncoding: 'base64' }
}

function jsonEntry(kv: KeyValue): Record<string, unknown> {
  const out: Record<string, unknown> = { key: kv.key, ...jsonValue(kv.value), version: kv.version }
  if (kv.expiresAt !== undefined) out.expiresAt = kv.expiresAt
  return out
}

function jsonChange(e: ChangeEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { key: e.key, version: e.version, deleted: e.value === undefined }
  if (e.value !== undefined) Object.assign(out, jsonValue(e.value))
  if (e.from !== undefined) out.from = e.from
  return out
}

/**
 * Reads a request body of at most `max` bytes; a larger one is a 413 before
 * it is all read. The rest of an oversized body is discarded unread (the
 * request timeout bounds how long), so the 413 still reaches the client.
 */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (Number.isFinite(declared) && declared > max) {
      reject(new HttpError(413, 'GV_ERR_VALUE_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${max}`))
      req.resume()
      return
    }
    let chunks: Buffer[] | undefined = []
    let size = 0
    req.on('data', (c: Buffer) => {
      if (chunks === undefined) return
      size += c.length
      if (size > max) {
        chunks = undefined
        reject(new HttpError(413, 'GV_ERR_VALUE_TOO_LARGE', `body exceeds the limit of ${max} bytes`))
        return
      }
      chunks.push(c)
    })
    req.on('end', () => {
      if (chunks !== undefined) resolve(Buffer.concat(chunks))
    })
    req.on('error', reject)
  })
}

/** A `ttl` query parameter in ms, or a 400 naming the limit. */
function httpTtl(text: string): number {
  try {
    return parseTtl(text, 'ttl')
  } catch (err) {
    throw new HttpError(400, 'GV_ERR_BAD_TTL', (err as Error).message)
  }
}

/** The keyring as served: ids and which is primary, never the keys themselves. */
function keyringJson(node: Grapevine): { id: number; primary: boolean }[] {
  return node.keyring.list().map((k) => ({ id: k.id, primary: k.primary }))
}

/** A watch stream and what it listens to. */
interface Watcher {
  readonly res: http.ServerResponse
  readonly prefix: string
  id: number
}

/**
 * A key from the raw request path (never normalised: `x/../secret` is not
 * `secret`). A segment that is `.` or `..`, written plainly or
 * percent-encoded, is refused: browsers and fetch (WHATWG URLs, which treat
 * %2e as a dot) and curl resolve dot segments before sending, so such a path
 * would name different keys from different clients. A key holding
 * such a segment is reachable with its slashes encoded (`a%2F..%2Fb`).
 */
export function keyFromPath(raw: string, maxKeyBytes: number): string {
  for (const segment of raw.split('/')) {
    const dots = segment.replace(/%2e/gi, '.')
    if (dots === '.' || dots === '..') {
      throw new HttpError(400, 'GV_ERR_INVALID_KEY', "a key path segment '.' or '..' (plain or percent-encoded) is refused; encode the slashes around it (a%2F..%2Fb)")
    }
  }
  let key: string
  try {
    key = decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, 'GV_ERR_INVALID_KEY', 'the key is not valid percent-encoded UTF-8')
  }
  if (key.length === 0) throw new HttpError(400, 'GV_ERR_INVALID_KEY', 'the key is empty')
  const bytes = Buffer.byteLength(key)
  if (bytes > maxKeyBytes) throw new HttpError(413, 'GV_ERR_KEY_TOO_LARGE', `key of ${bytes} bytes exceeds the limit of ${maxKeyBytes}`)
  return key
}

export class HttpApi {
  readonly server: http.Server
  private readonly guard: HttpGuard
  private readonly watchers = new Set<Watcher>()
  private readonly maxWatchers: number
  private readonly watchMaxBuffered: number

  constructor(private readonly options: HttpApiOptions) {
    this.guard = new HttpGuard({ ...(options.token !== undefined ? { token: options.token } : {}), allowedHosts: options.allowedHosts ?? [] })
    this.maxWatchers = options.maxWatchers ?? DEFAULT_MAX_WATCHERS
    this.watchMaxBuffered = options.watchMaxBufferedBytes ?? DEFAULT_WATCH_MAX_BUFFERED_BYTES
    const headersTimeout = options.headersTimeoutMs ?? 10_000
    // A client that sends its request slowly or not at all loses its socket:
    // headers within headersTimeout, the whole request within requestTimeout
    // (an SSE response is not a request, so it is not cut by these), checked
    // every second rather than node's default 30 s.
    this.server = http.createServer(
      { headersTimeout, requestTimeout: Math.max(headersTimeout, 30_000), keepAliveTimeout: 5000, connectionsCheckingInterval: Math.min(1000, headersTimeout) },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => this.fail(res, err))
      },
    )
    // One listener fans changes out to every watch stream (not one per stream on the node).
    options.node.on('change', (e) => {
      for (const w of this.watchers) if (e.key.startsWith(w.prefix)) this.push(w, `id: ${++w.id}\nevent: change\ndata: ${JSON.stringify(jsonChange(e))}\n\n`)
    })
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        const a = this.server.address() as { address: string; port: number }
        this.guard.boundHost = a.address
        resolve({ host: a.address, port: a.port })
      })
    })
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.res.end()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Open watch streams. */
  get watchCount(): number {
    return this.watchers.size
  }

  /** Bytes the open watch streams hold for their clients (at most watchMaxBufferedBytes each). */
  get watchBufferedBytes(): number {
    let n = 0
    for (const w of this.watchers) n += w.res.writableLength
    return n
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    if (err instanceof HttpError && err.reason !== undefined) this.options.metrics.httpRefused(err.reason)
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (err instanceof HttpError) {
      if (err.status === 401) res.setHeader('www-authenticate', 'Bearer')
      // The body may not have been read: do not keep the connection for another request.
      if (err.status === 413) res.setHeader('connection', 'close')
      send(res, err.status, { code: err.code, message: err.message })
    } else if (err instanceof ValueTooLargeError) send(res, 413, { code: err.code, message: err.message })
    else if (err instanceof InvalidKeyError) send(res, 400, { code: err.code, message: err.message })
    else if (err instanceof GrapevineError) send(res, 409, { code: err.code, message: err.message })
    else send(res, 500, { code: 'GV_ERR_INTERNAL', message: (err as Error).message })
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const guard = this.guard
    guard.checkHost(req)
    const target = req.url ?? '/'
    if (!target.startsWith('/')) throw new HttpError(400, 'GV_ERR_BAD_REQUEST', 'the request target must be a path')
    // The path is used as sent: `new URL` would resolve dot segments (also
    // %2e%2e) and so turn one key into another.
    const q = target.indexOf('?')
    const path = q < 0 ? target : target.slice(0, q)
    const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1))
    const method = req.method ?? 'GET'
    const node = this.options.node
    if (method !== 'GET' && method !== 'HEAD') guard.checkOrigin(req)
    if (method === 'GET' && path === '/' && this.options.dashboard !== undefined) {
      // The page holds no data (it asks for the token and fetches the API), so it needs no token.
      const page = this.options.dashboard()
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        'x-frame-options': 'DENY',
      })
      res.end(page)
      return
    }
    if (method === 'GET' && path === '/v1/health') {
      send(res, 200, { ok: true, converged: node.clusterStatus().converged })
      return
    }
    guard.checkToken(req)
    if (path.startsWith('/v1/kv/')) {
      const key = keyFromPath(path.slice('/v1/kv/'.length), this.options.maxKeyBytes)
      if (method === 'GET') {
        const got = node.get(key)
        if (got === undefined) throw new HttpError(404, 'GV_ERR_NOT_FOUND', `no live key '${key}'`)
        send(res, 200, jsonEntry({ key, ...got }))
        return
      }
      if (method === 'PUT') {
        const ttl = query.get('ttl')
        const ttlMs = ttl === null ? undefined : httpTtl(ttl)
        const body = await readBody(req, this.options.maxValueBytes)
        const binary = (req.headers['content-type'] ?? '').startsWith('application/octet-stream')
        let value: Value
        if (binary) value = new Uint8Array(body)
        else {
          value = body.toString('utf8')
          if (Buffer.byteLength(value) !== body.length) throw new HttpError(400, 'GV_ERR_BAD_VALUE', 'the body is not UTF-8; send bytes as application/octet-stream')
        }
        const version = node.set(key, value, ttlMs === undefined ? {} : { ttlMs })
        send(res, 200, { key, version })
        return
      }
      if (method === 'DELETE') {
        const version = node.delete(key)
        if (version === undefined) throw new HttpError(404, 'GV_ERR_NOT_FOUND', `no live key '${key}'`)
        send(res, 200, { key, version })
        return
      }
      throw new HttpError(405, 'GV_ERR_METHOD', `${method} is not allowed on ${path}`)
    }
    const route = `${method} ${path}`
    switch (route) {
      case 'GET /v1/kv':
        send(res, 200, node.entries({ prefix: query.get('prefix') ?? '' }).map(jsonEntry))
        return
      case 'GET /v1/members':
        send(res, 200, node.members())
        return
      case 'GET /v1/status':
        send(res, 200, this.status())
        return
      case 'GET /v1/watch':
        this.watch(req, res, query.get('prefix') ?? '')
        return
      case 'GET /metrics': {
        const text = await this.options.metrics.text()
        res.writeHead(200, { 'content-type': this.options.metrics.registry.contentType })
        res.end(text)
        return
      }
      case 'GET /v1/keyring':
        send(res, 200, keyringJson(node))
        return
      case 'POST /v1/keyring/install':
      case 'POST /v1/keyring/use':
      case 'POST /v1/keyring/remove': {
        guard.checkJson(req)
        const body = await readBody(req, 4096)
        let key: unknown
        let force: unknown
        try {
          const parsed = JSON.parse(body.toString('utf8')) as { key?: unknown; force?: unknown } | null
          key = parsed?.key
          force = parsed?.force
        } catch {
          throw new HttpError(400, 'GV_ERR_BAD_REQUEST', 'the body must be JSON: {"key": "<base64>"}')
        }
        if (typeof key !== 'string') throw new HttpError(400, 'GV_ERR_BAD_REQUEST', 'the body must be JSON: {"key": "<base64>"}')
        if (force !== undefined && typeof force !== 'boolean') throw new HttpError(400, 'GV_ERR_BAD_REQUEST', '"force" must be true or false')
        const op = path.slice('/v1/keyring/'.length) as KeyringOp
        // remove: GV_ERR_KEY_IN_USE (409) while peers still seal with the key, unless "force": true.
        if (this.options.changeKeyring !== undefined) this.options.changeKeyring(op, key, force === true)
        else if (op === 'remove') node.keyring.remove(key, { force: force === true })
        else node.keyring[op](key)
        send(res, 200, keyringJson(node))
        return
      }
    }
    throw new HttpError(404, 'GV_ERR_NO_ROUTE', `no route ${method} ${path.slice(0, 200)}`)
  }

  status(): Record<string, unknown> {
    const node = this.options.node
    const counts = { alive: 0, suspect: 0, dead: 0, left: 0 }
    for (const m of node.members()) counts[m.status]++
    const cluster = node.clusterStatus()
    return {
      name: node.name,
      address: node.address,
      stateHash: cluster.stateHash,
      keys: node.storeCounts.live,
      tombstones: node.storeCounts.tombstones,
      members: counts,
      traffic: {
        messagesOut: node.stats.messagesOut + node.stats.streamsOut,
        bytesOut: node.stats.bytesOut + node.stats.streamBytesOut,
        messagesIn: node.stats.messagesIn + node.stats.streamsIn,
        bytesIn: node.stats.bytesIn + node.stats.streamBytesIn,
      },
      encrypted: node.encryption !== undefined,
      cluster: {
        converged: cluster.converged,
        alive: cluster.alive,
        agreeing: cluster.agreeing,
        disagreeing: cluster.members.filter((m) => m.stateHash !== cluster.stateHash).map((m) => m.name),
      },
    }
  }

  /**
   * Server-Sent Events: one `change` event per change under the prefix, as
   * JSON. Invariant: a stream never holds more than watchMaxBufferedBytes for
   * its client (checked before each write, as `write()` would buffer without
   * limit); a client that falls that far behind gets `event: dropped` and is
   * disconnected, so clients that stop reading cannot grow the agent's memory.
   */
  private watch(req: http.IncomingMessage, res: http.ServerResponse, prefix: string): void {
    if (this.watchers.size >= this.maxWatchers) {
      throw new HttpError(429, 'GV_ERR_TOO_MANY_WATCHERS', `this agent serves at most ${this.maxWatchers} watch streams at once`, 'watch-cap')
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(': watching\n\n')
    const w: Watcher = { res, prefix, id: 0 }
    this.watchers.add(w)
    const beat = setInterval(() => this.push(w, ': heartbeat\n\n'), this.options.watchHeartbeatMs ?? SSE_HEARTBEAT_MS)
    const done = (): void => {
      clearInterval(beat)
      this.watchers.delete(w)
    }
    req.on('close', done)
    res.on('close', done)
  }

  private push(w: Watcher, event: string): void {
    // A stream already cut may still see its heartbeat fire before its socket closes.
    if (!this.watchers.has(w)) return
    if (w.res.writableLength + Buffer.byteLength(event) <= this.watchMaxBuffered) {
      w.res.write(event)
      return
    }
    this.watchers.delete(w)
    this.options.metrics.httpRefused('slow-consumer')
    w.res.end(`event: dropped\ndata: ${JSON.stringify({ reason: 'slow-consumer', maxBufferedBytes: this.watchMaxBuffered })}\n\n`)
    // A client that reads nothing would hold the socket and the buffer until
    // TCP gave up; it has the grace period to take its last event.
    const kill = setTimeout(() => w.res.destroy(), this.options.watchDropGraceMs ?? 5000)
    kill.unref()
    w.res.once('close', () => clearTimeout(kill))
  }
}
