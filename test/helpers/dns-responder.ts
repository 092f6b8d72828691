/**
 * A DNS server for tests, on loopback UDP: answers A queries for the names
 * it is given (a name may list several addresses, as a Kubernetes headless
 * Service does) and NXDOMAIN for everything else. Names can be added while
 * it runs. Enough of RFC 1035 for one question per query; anything it
 * cannot parse is ignored.
 */
import dgram from 'node:dgram'

export class DnsResponder {
  readonly records = new Map<string, string[]>()
  queries = 0
  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {}

  static async start(): Promise<DnsResponder> {
    const socket = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    const r = new DnsResponder(socket, socket.address().port)
    socket.on('message', (msg, rinfo) => {
      const answer = r.answer(msg)
      if (answer !== undefined) socket.send(answer, rinfo.port, rinfo.address)
    })
    return r
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  private answer(q: Buffer): Buffer | undefined {
    if (q.length < 12 || q.readUInt16BE(4) !== 1) return undefined
    this.queries++
    // The question: labels, then type and class.
    const labels: string[] = []
    let at = 12
    for (;;) {
      if (at >= q.length) return undefined
      const len = q[at]!
      at++
      if (len === 0) break
      if (len > 63 || at + len > q.length) return undefined
      labels.push(q.toString('ascii', at, at + len))
      at += len
    }
    if (at + 4 > q.length) return undefined
    const qtype = q.readUInt16BE(at)
    const question = q.subarray(12, at + 4)
    const name = labels.join('.').toLowerCase()
    const ips = this.records.get(name)
    const answers = ips !== undefined && qtype === 1 ? ips : []
    const header = Buffer.alloc(12)
    header.writeUInt16BE(q.readUInt16BE(0), 0) // id
    // QR, opcode 0, AA, RD copied, RA; rcode 3 (NXDOMAIN) for an unknown name.
    header.writeUInt16BE(0x8400 | (q.readUInt16BE(2) & 0x0100) | 0x0080 | (ips === undefined ? 3 : 0), 2)
    header.writeUInt16BE(1, 4)
    header.writeUInt16BE(answers.length, 6)
    const rrs = answers.map((ip) => {
      const rr = Buffer.alloc(16)
      rr.writeUInt16BE(0xc00c, 0) // pointer to the question's name
      rr.writeUInt16BE(1, 2) // A
      rr.writeUInt16BE(1, 4) // IN
      rr.writeUInt32BE(5, 6) // TTL
      rr.writeUInt16BE(4, 10)
      ip.split('.').forEach((p, i) => (rr[12 + i] = Number(p)))
      return rr
    })
    return Buffer.concat([header, question, ...rrs])
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}
