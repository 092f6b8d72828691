import { timingSafeEqual } from 'node:crypto'
import http from 'node:http'
import { GrapevineError, InvalidKeyError, ValueTooLargeError } from '../errors.js'
import type { ChangeEvent, Grapevine, KeyValue } from '../node.js'
import type { Value } from '../state/entry.js'
import type { AgentMetrics } from './metrics.js'
import { parseDuration } from './config.js'

/**
 * The agent's HTTP API, versioned under /v1 (docs/http-api.md and
 * docs/openapi.json describe it). JSON in and out, except a PUT body, which
 * is the raw value: text unless sent as application/octet-stream. Every
 * error is `{ code, message }` with a stable code.
 */
export interface HttpApiOptions {
  readonly node: Grapevine
  readonly metrics: AgentMetrics
  /** When set, writes (PUT, DELETE, POST) need `Authorization: Bearer <token>`. */
  readonly token?: string
  readonly maxValueBytes: number
  readonly maxKeyBytes: number
  /** The dashboard page, served at `/` when given. */
  readonly dashboard?: () => string
  /** Called after a keyring change made through the API (the agent rewrites its keyring file). */
  readonly onKeyringChange?: () => void
}

/** An error answered as JSON with its HTTP status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

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

/** Reads a request body of at most `max` bytes; a larger one is a 413 before it is all read. */
function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (Number.isFinite(declared) && declared > max) {
      reject(new HttpError(413, 'GV_ERR_VALUE_TOO_LARGE', `body of ${declared} bytes exceeds the limit of ${max}`))
      req.resume()
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max) {
        reject(new HttpError(413, 'GV_ERR_VALUE_TOO_LARGE', `body exceeds the limit of ${max} bytes`))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export class HttpApi {
  readonly server: http.Server
  private readonly watchers = new Set<http.ServerResponse>()

  constructor(private readonly options: HttpApiOptions) {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => this.fail(res, err))
    })
    // Slow or stuck clients cannot hold sockets forever (SSE responses are exempt: they set no timeout on the response).
    this.server.headersTimeout = 10_000
    this.server.requestTimeout = 30_000
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        const a = this.server.address() as { address: string; port: number }
        resolve({ host: a.address, port: a.port })
      })
    })
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.end()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private fail(res: http.ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (err instanceof HttpError) send(res, err.status, { code: err.code, message: err.message })
    else if (err instanceof ValueTooLargeError) send(res, 413, { code: err.code, message: err.message })
    else if (err instanceof InvalidKeyError) send(res, 400, { code: err.code, message: err.message })
    else if (err instanceof GrapevineError) send(res, 409, { code: err.code, message: err.message })
    else send(res, 500, { code: 'GV_ERR_INTERNAL', message: (err as Error).message })
  }

  private authorize(req: http.IncomingMessage): void {
    const token = this.options.token
    if (token === undefined) return
    const given = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
    const a = Buffer.from(given)
    const b = Buffer.from(token)
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new HttpError(401, 'GV_ERR_UNAUTHORIZED', 'this agent requires a bearer token for writes')
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://agent')
    const path = url.pathname
    const method = req.method ?? 'GET'
    const node = this.options.node
    if (path.startsWith('/v1/kv/')) {
      const key = this.keyOf(path.slice('/v1/kv/'.length))
      if (method === 'GET') {
        const got = node.get(key)
        if (got === undefined) throw new HttpError(404, 'GV_ERR_NOT_FOUND', `no live key '${key}'`)
        send(res, 200, jsonEntry({ key, ...got }))
        return
      }
      if (method === 'PUT') {
        this.authorize(req)
        const body = await readBody(req, this.options.maxValueBytes)
        const binary = (req.headers['content-type'] ?? '').startsWith('application/octet-stream')
        let value: Value
        if (binary) value = new Uint8Array(body)
        else {
          value = body.toString('utf8')
          if (Buffer.byteLength(value) !== body.length) throw new HttpError(400, 'GV_ERR_BAD_VALUE', 'the body is not UTF-8; send bytes as application/octet-stream')
        }
        const ttl = url.searchParams.get('ttl')
        let ttlMs: number | undefined
        if (ttl !== null) {
          try {
            ttlMs = parseDuration(ttl, 'ttl')
          } catch (err) {
            throw new HttpError(400, 'GV_ERR_BAD_TTL', (err as Error).message)
          }
          if (ttlMs <= 0) throw new HttpError(400, 'GV_ERR_BAD_TTL', 'ttl must be positive')
        }
        const version = node.set(key, value, ttlMs === undefined ? {} : { ttlMs })
        send(res, 200, { key, version })
        return
      }
      if (method === 'DELETE') {
        this.authorize(req)
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
        send(res, 200, node.entries({ prefix: url.searchParams.get('prefix') ?? '' }).map(jsonEntry))
        return
      case 'GET /v1/members':
        send(res, 200, node.members())
        return
      case 'GET /v1/status':
        send(res, 200, this.status())
        return
      case 'GET /v1/watch':
        this.watch(req, res, url.searchParams.get('prefix') ?? '')
        return
      case 'GET /metrics': {
        const text = await this.options.metrics.text()
        res.writeHead(200, { 'content-type': this.options.metrics.registry.contentType })
        res.end(text)
        return
      }
      case 'GET /v1/keyring':
        send(res, 200, node.keyring.list())
        return
      case 'POST /v1/keyring/install':
      case 'POST /v1/keyring/use':
      case 'POST /v1/keyring/remove': {
        this.authorize(req)
        const body = await readBody(req, 4096)
        let key: unknown
        let force: unknown
        try {
          ;({ key, force } = JSON.parse(body.toString('utf8')) as { key?: unknown; force?: unknown })
        } catch {
          throw new HttpError(400, 'GV_ERR_BAD_REQUEST', 'the body must be JSON: {"key": "<base64>"}')
        }
        if (typeof key !== 'string') throw new HttpError(400, 'GV_ERR_BAD_REQUEST', 'the body must be JSON: {"key": "<base64>"}')
        if (force !== undefined && typeof force !== 'boolean') throw new HttpError(400, 'GV_ERR_BAD_REQUEST', '"force" must be true or false')
        const op = path.slice('/v1/keyring/'.length) as 'install' | 'use' | 'remove'
        // remove: GV_ERR_KEY_IN_USE (409) while peers still seal with the key, unless "force": true.
        if (op === 'remove') node.keyring.remove(key, { force: force === true })
        else node.keyring[op](key)
        this.options.onKeyringChange?.()
        send(res, 200, node.keyring.list())
        return
      }
    }
    if (method === 'GET' && path === '/' && this.options.dashboard !== undefined) {
      const page = this.options.dashboard()
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      res.end(page)
      return
    }
    throw new HttpError(404, 'GV_ERR_NO_ROUTE', `no route ${method} ${path}`)
  }

  /** A key from the path: percent-decoded, 1 to maxKeyBytes UTF-8 bytes. */
  private keyOf(encoded: string): string {
    let key: string
    try {
      key = decodeURIComponent(encoded)
    } catch {
      throw new HttpError(400, 'GV_ERR_INVALID_KEY', 'the key is not valid percent-encoded UTF-8')
    }
    if (key.length === 0) throw new HttpError(400, 'GV_ERR_INVALID_KEY', 'the key is empty')
    const bytes = Buffer.byteLength(key)
    if (bytes > this.options.maxKeyBytes) throw new HttpError(413, 'GV_ERR_KEY_TOO_LARGE', `key of ${bytes} bytes exceeds the limit of ${this.options.maxKeyBytes}`)
    return key
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

  /** Server-Sent Events: one `change` event per change under the prefix, as JSON. */
  private watch(req: http.IncomingMessage, res: http.ServerResponse, prefix: string): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(': watching\n\n')
    this.watchers.add(res)
    const node = this.options.node
    let id = 0
    const onChange = (e: ChangeEvent): void => {
      if (!e.key.startsWith(prefix)) return
      res.write(`id: ${++id}\nevent: change\ndata: ${JSON.stringify(jsonChange(e))}\n\n`)
    }
    node.on('change', onChange)
    const beat = setInterval(() => res.write(': heartbeat\n\n'), SSE_HEARTBEAT_MS)
    const done = (): void => {
      clearInterval(beat)
      node.off('change', onChange)
      this.watchers.delete(res)
    }
    req.on('close', done)
    res.on('close', done)
  }
}
