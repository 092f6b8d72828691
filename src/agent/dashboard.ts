/**
 * The agent's dashboard (`GET /`): one self-contained page, no build step
 * and nothing fetched from elsewhere (agents often run on closed networks).
 * It reads the agent's own API: `/v1/status` and `/v1/members` every second,
 * `/v1/kv` once and then the live feed `/v1/watch` (Server-Sent Events) for
 * every change. It shows the members (status, incarnation, tags, time since
 * last heard), the keys (value, version, origin), the feed, whether the
 * cluster has converged, and a chart of this agent's traffic.
 *
 * An agent with a token answers 401 until the page has it: the page then
 * asks for it once (kept in sessionStorage, so it lasts the tab, not the
 * browser) and sends it as a bearer header on every request. The feed is
 * read with fetch streaming rather than EventSource, which cannot send
 * headers: a token in the URL would end up in histories and logs.
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>grapevine</title>
<style>
  :root { --bg: #fbfaf7; --fg: #1f2328; --muted: #6e7781; --line: #d8dee4; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #6639ba; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 14px 20px; border-bottom: 1px solid var(--line); background: #fff; }
  header h1 { margin: 0; font-size: 18px; color: var(--accent); }
  header .meta { color: var(--muted); }
  .badge { padding: 2px 10px; border-radius: 12px; font-weight: 600; }
  .badge.ok { background: #dafbe1; color: var(--ok); } .badge.no { background: #fff8c5; color: var(--warn); }
  main { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; padding: 16px 20px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; min-width: 0; overflow-x: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { margin: 0 0 8px; font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .st-alive { color: var(--ok); } .st-suspect { color: var(--warn); } .st-dead, .st-left { color: var(--bad); }
  code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  #feed { list-style: none; margin: 0; padding: 0; max-height: 260px; overflow: auto; }
  #feed li { padding: 3px 0; border-bottom: 1px dashed var(--line); }
  .muted { color: var(--muted); }
  canvas { width: 100%; height: 180px; }
  #auth { padding: 10px 20px; background: #fff8c5; border-bottom: 1px solid var(--line); }
  #auth[hidden] { display: none; }
</style>
</head>
<body>
<header>
  <h1>grapevine</h1>
  <span id="name" class="meta"></span>
  <span id="converged" class="badge no">…</span>
  <span id="hash" class="meta mono"></span>
  <span id="counts" class="meta"></span>
</header>
<form id="auth" hidden><label>This agent needs its HTTP token: <input id="token" type="password" autocomplete="off"></label> <button type="submit">Connect</button></form>
<main>
  <section><h2>Members</h2>
    <table><thead><tr><th>name</th><th>address</th><th>status</th><th class="num">incarnation</th><th>tags</th><th class="num">heard</th></tr></thead>
    <tbody id="members"></tbody></table></section>
  <section><h2>Keys</h2>
    <table><thead><tr><th>key</th><th>value</th><th>origin</th><th class="num">version</th></tr></thead>
    <tbody id="keys"></tbody></table></section>
  <section><h2>Live changes</h2><ul id="feed"><li class="muted">waiting for changes…</li></ul></section>
  <section><h2>Traffic of this agent (bytes per second)</h2><canvas id="chart" width="600" height="180"></canvas>
    <div class="muted"><span style="color:#6639ba">■</span> sent <span style="color:#1a7f37">■</span> received</div></section>
</main>
<script>
const $ = (id) => document.getElementById(id)
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
const keys = new Map()
const series = []
let last
let token = sessionStorage.getItem('grapevine-token') || ''
let timer

function headers() { return token ? { authorization: 'Bearer ' + token } : {} }

function askToken() {
  $('auth').hidden = false
  $('token').focus()
}

$('auth').addEventListener('submit', (ev) => {
  ev.preventDefault()
  token = $('token').value.trim()
  sessionStorage.setItem('grapevine-token', token)
  $('auth').hidden = true
  start()
})

async function getJson(path) {
  const r = await fetch(path, { headers: headers() })
  if (r.status === 401) { askToken(); throw new Error('unauthorized') }
  if (!r.ok) throw new Error(path + ': ' + r.status)
  return r.json()
}

function showValue(e) { return e.valueEncoding === 'base64' ? '(bytes) ' + e.value : e.value }

function renderKeys() {
  const rows = [...keys.values()].sort((a, b) => (a.key < b.key ? -1 : 1)).slice(0, 500)
  $('keys').innerHTML = rows.map((e) => '<tr><td class="mono">' + esc(e.key) + '</td><td class="mono">' + esc(showValue(e)).slice(0, 120) +
    '</td><td>' + esc(e.version.origin) + '</td><td class="num mono">' + esc(e.version.ts) + '</td></tr>').join('')
}

async function refresh() {
  try {
    const [status, members] = await Promise.all([getJson('/v1/status'), getJson('/v1/members')])
    $('name').textContent = status.name + ' · ' + status.address
    const c = $('converged')
    c.textContent = status.cluster.converged ? 'converged' : 'converging (' + status.cluster.agreeing + '/' + status.cluster.alive + ' agree)'
    c.className = 'badge ' + (status.cluster.converged ? 'ok' : 'no')
    c.dataset.converged = String(status.cluster.converged)
    $('hash').textContent = 'state ' + status.stateHash
    $('counts').textContent = status.keys + ' keys · ' + status.members.alive + ' alive, ' + status.members.suspect + ' suspect, ' + status.members.dead + ' dead, ' + status.members.left + ' left'
    const now = Date.now()
    $('members').innerHTML = members.map((m) => '<tr><td>' + esc(m.name) + '</td><td class="mono">' + esc(m.address) + '</td><td class="st-' + m.status + '">' + m.status +
      '</td><td class="num">' + m.incarnation + '</td><td class="mono">' + esc(Object.entries(m.tags).map(([k, v]) => k + '=' + v).join(' ')) +
      '</td><td class="num">' + (m.lastHeardMs === undefined || m.lastHeardMs === null ? '–' : ((now - m.lastHeardMs) / 1000).toFixed(1) + ' s') + '</td></tr>').join('')
    const t = status.traffic
    if (last !== undefined) {
      const dt = (now - last.at) / 1000
      series.push({ out: (t.bytesOut - last.t.bytesOut) / dt, in: (t.bytesIn - last.t.bytesIn) / dt })
      if (series.length > 120) series.shift()
      drawChart()
    }
    last = { at: now, t }
  } catch (err) {
    $('converged').textContent = 'agent unreachable'
    $('converged').className = 'badge no'
  }
}

function drawChart() {
  const cv = $('chart'), g = cv.getContext('2d'), w = cv.width, h = cv.height
  g.clearRect(0, 0, w, h)
  const max = Math.max(1, ...series.map((p) => Math.max(p.out, p.in)))
  g.strokeStyle = '#d8dee4'; g.fillStyle = '#6e7781'; g.font = '11px system-ui'
  for (let i = 0; i <= 4; i++) { const y = 10 + (h - 20) * i / 4; g.beginPath(); g.moveTo(40, y); g.lineTo(w, y); g.stroke(); g.fillText(Math.round(max * (1 - i / 4)), 2, y + 4) }
  for (const [field, color] of [['out', '#6639ba'], ['in', '#1a7f37']]) {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath()
    series.forEach((p, i) => { const x = 40 + (w - 40) * i / 119, y = 10 + (h - 20) * (1 - p[field] / max); i === 0 ? g.moveTo(x, y) : g.lineTo(x, y) })
    g.stroke()
  }
}

function showChange(e) {
  const feed = $('feed')
  if (e.deleted) keys.delete(e.key); else keys.set(e.key, e)
  renderKeys()
  if (feed.firstElementChild && feed.firstElementChild.classList.contains('muted')) feed.innerHTML = ''
  const li = document.createElement('li')
  li.innerHTML = '<span class="muted">' + new Date().toLocaleTimeString() + '</span> <code>' + esc(e.key) + '</code> ' +
    (e.deleted ? '<b>deleted</b>' : '= <code>' + esc(showValue(e)).slice(0, 80) + '</code>') + ' <span class="muted">by ' + esc(e.version.origin) + (e.from ? ' via ' + esc(e.from) : '') + '</span>'
  feed.prepend(li)
  while (feed.children.length > 200) feed.lastElementChild.remove()
}

// Server-Sent Events over fetch: events end at a blank line; only 'change' events are shown.
async function watch() {
  const r = await fetch('/v1/watch', { headers: headers() })
  if (r.status === 401) { askToken(); return false }
  if (!r.ok) return true
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader()
  let buf = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return true
    buf += value
    for (let end = buf.indexOf('\\n\\n'); end >= 0; end = buf.indexOf('\\n\\n')) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      let event = 'message'
      const data = []
      for (const line of block.split('\\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim()
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (event === 'change' && data.length > 0) showChange(JSON.parse(data.join('\\n')))
    }
  }
}

async function start() {
  try {
    keys.clear()
    for (const e of await getJson('/v1/kv')) keys.set(e.key, e)
  } catch (err) {
    return
  }
  renderKeys()
  refresh()
  if (timer === undefined) timer = setInterval(refresh, 1000)
  // Reconnect after the feed ends (agent restart, slow-consumer cut), from a fresh list of keys.
  watch().then((again) => { if (again) setTimeout(start, 2000) }, () => setTimeout(start, 2000))
}
start()
</script>
</body>
</html>
`

export function renderDashboard(): string {
  return PAGE
}
