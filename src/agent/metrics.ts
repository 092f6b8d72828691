import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Grapevine } from '../node.js'
import type { RefusalReason } from './http-guard.js'
import { MessageType } from '../codec/messages.js'
import { physicalMsOf } from '../state/hlc.js'

const TYPE_NAMES = new Map<number, string>(
  Object.entries(MessageType)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
)

/**
 * The agent's Prometheus metrics (`GET /metrics`). Counters the node keeps
 * anyway (messages, bytes, drops) are read at scrape time; timings are
 * observed from the node's events as they happen.
 *
 * - convergence: for every change that arrived from a peer, the time from
 *   its write (the physical part of its version) to its arrival here;
 * - detection: from a member's first suspicion here to its death here.
 */
export class AgentMetrics {
  readonly registry = new Registry()
  private readonly suspectedAt = new Map<string, number>()
  private readonly refused: Counter<'reason'>

  constructor(node: Grapevine) {
    const r = this.registry
    collectDefaultMetrics({ register: r, prefix: 'grapevine_process_' })
    const stats = (): Grapevine['stats'] => node.stats
    new Gauge({
      name: 'grapevine_messages_sent',
      help: 'Messages sent, by type (datagrams and streams)',
      labelNames: ['type'],
      registers: [r],
      collect() {
        this.reset()
        for (const [t, n] of stats().sentByType) this.set({ type: TYPE_NAMES.get(t) ?? String(t) }, n)
      },
    })
    new Gauge({
      name: 'grapevine_bytes_sent',
      help: 'Bytes sent, by message type (before sealing)',
      labelNames: ['type'],
      registers: [r],
      collect() {
        this.reset()
        for (const [t, n] of stats().bytesByType) this.set({ type: TYPE_NAMES.get(t) ?? String(t) }, n)
      },
    })
    new Gauge({
      name: 'grapevine_messages_received',
      help: 'Messages received and decoded, by type (datagrams and streams)',
      labelNames: ['type'],
      registers: [r],
      collect() {
        this.reset()
        for (const [t, n] of stats().receivedByType) this.set({ type: TYPE_NAMES.get(t) ?? String(t) }, n)
      },
    })
    new Gauge({
      name: 'grapevine_bytes_received',
      help: 'Bytes received, by message type (after opening sealed packets)',
      labelNames: ['type'],
      registers: [r],
      collect() {
        this.reset()
        for (const [t, n] of stats().bytesInByType) this.set({ type: TYPE_NAMES.get(t) ?? String(t) }, n)
      },
    })
    new Gauge({
      name: 'grapevine_received',
      help: 'Datagrams and stream messages received, and their bytes',
      labelNames: ['transport', 'unit'],
      registers: [r],
      collect() {
        const s = stats()
        this.set({ transport: 'udp', unit: 'messages' }, s.messagesIn)
        this.set({ transport: 'udp', unit: 'bytes' }, s.bytesIn)
        this.set({ transport: 'tcp', unit: 'messages' }, s.streamsIn)
        this.set({ transport: 'tcp', unit: 'bytes' }, s.streamBytesIn)
      },
    })
    new Gauge({
      name: 'grapevine_dropped',
      help: 'Inbound messages or entries dropped, by reason',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset()
        for (const [reason, n] of stats().drops) this.set({ reason }, n)
      },
    })
    new Gauge({
      name: 'grapevine_members',
      help: 'Members known, by status',
      labelNames: ['status'],
      registers: [r],
      collect() {
        const counts: Record<string, number> = { alive: 0, suspect: 0, dead: 0, left: 0 }
        for (const m of node.members()) counts[m.status] = (counts[m.status] ?? 0) + 1
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n)
      },
    })
    new Gauge({
      name: 'grapevine_keys',
      help: 'Stored entries: live keys and tombstones awaiting collection',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        const c = node.storeCounts
        this.set({ kind: 'live' }, c.live)
        this.set({ kind: 'tombstone' }, c.tombstones)
      },
    })
    new Gauge({
      name: 'grapevine_exchanges',
      help: 'Anti-entropy probes sent, reconciliations (fingerprints differed), resets sent and received, pushes sent',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        const s = stats()
        this.set({ kind: 'probe' }, s.probesSent)
        this.set({ kind: 'reconciliation' }, s.reconciliations)
        this.set({ kind: 'reset_sent' }, s.resetsSent)
        this.set({ kind: 'reset_received' }, s.resetsReceived)
        this.set({ kind: 'push' }, s.pushesSent)
      },
    })
    new Gauge({
      name: 'grapevine_unsendable',
      help: 'Messages of ours not sent: over the datagram limit where no stream may carry them (datagram), a full state beyond the stream limit (reset)',
      labelNames: ['kind'],
      registers: [r],
      collect() {
        const s = stats()
        this.set({ kind: 'datagram' }, s.unsendable)
        this.set({ kind: 'reset' }, s.resetsTooLarge)
      },
    })
    new Gauge({
      name: 'grapevine_network_errors',
      help: 'Transient network errors, by code',
      labelNames: ['code'],
      registers: [r],
      collect() {
        for (const [code, n] of node.networkErrorsByCode) this.set({ code }, n)
      },
    })
    new Gauge({
      name: 'grapevine_stream_refusals',
      help: 'Inbound streams refused or cut, by reason (slots-full, per-ip-cap, header-timeout, too-slow, memory-cap, unauthenticated-header...)',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        for (const [reason, n] of node.streamRefusalsByReason) this.set({ reason }, n)
      },
    })
    new Gauge({
      name: 'grapevine_stream_buffered_bytes',
      help: 'Bytes reserved now for inbound stream bodies being read',
      registers: [r],
      collect() {
        this.set(node.streamBufferedBytes.now)
      },
    })
    new Gauge({
      name: 'grapevine_cluster_converged',
      help: '1 when every alive member published our state hash, else 0',
      registers: [r],
      collect() {
        this.set(node.clusterStatus().converged ? 1 : 0)
      },
    })
    new Gauge({
      name: 'grapevine_cluster_agreeing_members',
      help: 'Alive members whose published state hash is ours (ourselves included)',
      registers: [r],
      collect() {
        this.set(node.clusterStatus().agreeing)
      },
    })
    const convergence = new Histogram({
      name: 'grapevine_change_arrival_seconds',
      help: 'From a write at its origin to its arrival here (remote changes only; includes clock offset)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [r],
    })
    const detection = new Histogram({
      name: 'grapevine_failure_detection_seconds',
      help: 'From a member first suspected here to declared dead here',
      buckets: [0.5, 1, 2, 3, 5, 7, 10, 15, 20, 30, 60],
      registers: [r],
    })
    this.refused = new Counter({
      name: 'grapevine_http_refused_total',
      help: 'HTTP requests refused before being served, and watch streams cut, by reason',
      labelNames: ['reason'],
      registers: [r],
    })
    for (const reason of ['host', 'origin', 'content-type', 'token', 'watch-cap', 'slow-consumer'] satisfies RefusalReason[]) this.refused.inc({ reason }, 0)
    const changes = new Counter({ name: 'grapevine_changes', help: 'Visible changes applied here, by source', labelNames: ['source'], registers: [r] })
    node.on('change', (e) => {
      changes.inc({ source: e.from === undefined ? 'local' : 'remote' })
      if (e.from !== undefined) convergence.observe(Math.max(0, Date.now() - physicalMsOf(e.version.ts)) / 1000)
    })
    node.on('member', (e) => {
      if (e.type === 'suspect') {
        if (!this.suspectedAt.has(e.member.name)) this.suspectedAt.set(e.member.name, Date.now())
      } else if (e.type === 'dead') {
        const at = this.suspectedAt.get(e.member.name)
        if (at !== undefined) detection.observe((Date.now() - at) / 1000)
        this.suspectedAt.delete(e.member.name)
      } else if (e.type === 'alive' || e.type === 'left' || e.type === 'reaped') {
        this.suspectedAt.delete(e.member.name)
      }
    })
  }

  httpRefused(reason: RefusalReason): void {
    this.refused.inc({ reason })
  }

  async text(): Promise<string> {
    return this.registry.metrics()
  }
}
