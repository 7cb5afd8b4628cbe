// The live web view of a demo run: reads the demo's event stream (/events) and draws the ring, a
// card per node (its process state, what its peers think of it, its numbers and charts) and the
// chaos events. Every number is also in the DOM (data-node, data-field), for people and for tests.
import { COLORS, drawChart, drawRing } from './charts.js'

const STATE_TEXT = { up: 'up', starting: 'starting', killed: 'DOWN (killed)', crashed: 'DOWN (crashed)', stopped: 'stopped' }
/** Per row (node or 'all'), the fields charted, one value a second. */
const CHARTED = ['requestsPerS', 'mainHitPct', 'hotHitPct', 'originLoadsPerS']

const $ = (selector, root = document) => root.querySelector(selector)
let run
/** @type {Map<string, Record<string, (number | null)[]>>} */
const history = new Map()

function colorOf(id) {
  return id === 'all' ? '#c8ced8' : COLORS[run.nodes.findIndex((n) => n.id === id) % COLORS.length]
}

function start(hello) {
  run = hello
  document.title = hello.title
  $('#title').textContent = hello.title
  const list = $('#nodes')
  list.replaceChildren()
  history.clear()
  for (const { id, url } of [{ id: 'all', url: 'the whole cluster' }, ...hello.nodes]) {
    const card = $('#node-card').content.firstElementChild.cloneNode(true)
    card.dataset.node = id
    $('.id', card).textContent = id
    $('.url', card).textContent = url
    $('.swatch', card).style.background = colorOf(id)
    list.append(card)
    history.set(id, Object.fromEntries(CHARTED.map((f) => [f, []])))
  }
  $('#events').replaceChildren()
  for (const e of hello.events) addEvent(e)
  for (const s of hello.samples) record(s)
  const last = hello.samples.at(-1)
  if (last) show(last)
  else drawShares(hello.nodes.map((n) => ({ id: n.id, state: 'up' })))
}

function record(sample) {
  for (const row of [sample.all, ...sample.nodes]) {
    const h = history.get(row.id)
    for (const f of CHARTED) h[f].push(row[f])
  }
}

function show(sample) {
  document.body.dataset.second = String(sample.second)
  $('#status').textContent = `second ${sample.second} of ${sample.durationS}`
  const r = sample.run
  $('#totals').textContent =
    `since start: ${r.requests} requests · ${r.answered} answered · ${r.failed} failed · ${r.retries} retried on another node · ` +
    `${r.originLoads} origin loads · ${r.dedup ?? '-'} requests per origin load`
  for (const row of [sample.all, ...sample.nodes]) showRow(row, sample)
  drawShares(sample.nodes)
}

function showRow(row, sample) {
  const card = $(`#nodes [data-node="${row.id}"]`)
  const state = $('.state', card)
  card.dataset.state = row.state || 'up'
  state.textContent =
    row.id === 'all' ? `${sample.nodes.filter((n) => n.state === 'up').length} of ${sample.nodes.length} up` : STATE_TEXT[row.state]
  $('.health', card).textContent = row.id === 'all' ? 'every node added up' : healthText(row.id, sample.nodes)
  const hit = row.mainHitPct === null ? null : row.mainHitPct + row.hotHitPct
  const values = { ...row, hitPct: hit === null ? '-' : `${hit}%` }
  for (const dd of card.querySelectorAll('[data-field]')) dd.textContent = values[dd.dataset.field] ?? '-'
  const h = history.get(row.id)
  const chart = (name) => card.querySelector(`[data-chart="${name}"]`)
  drawChart(chart('requestsPerS'), [h.requestsPerS], [colorOf(row.id)], { max: 10 })
  drawChart(chart('hitPct'), [h.mainHitPct, h.hotHitPct], ['#59a14f', '#edc948'], { max: 100, unit: '%' })
  drawChart(chart('originLoadsPerS'), [h.originLoadsPerS], ['#e15759'], { max: 10 })
}

/** What the other nodes that are up think of `id`: "peers: up (n1, n3)", "peers: down (n1) · suspect (n3)". */
function healthText(id, nodes) {
  const views = new Map()
  for (const other of nodes) {
    if (other.id === id || other.state !== 'up') continue
    const state = other.health.find((h) => h.peer === id)?.state ?? 'not asked yet'
    views.set(state, [...(views.get(state) ?? []), other.id])
  }
  if (views.size === 0) return 'peers: none up to ask'
  return `peers see it: ${[...views].map(([state, by]) => `${state} (${by.join(', ')})`).join(' · ')}`
}

/** Arc i's holder now: its node if up, else the next node clockwise that is up (as the peers route around a down node). */
function holders(isUp) {
  const arcs = run.ring.arcs
  return arcs.map((_, i) => {
    for (let k = 0; k < arcs.length; k++) {
      const node = arcs[(i + k) % arcs.length].node
      if (isUp(node)) return node
    }
    return undefined
  })
}

function drawShares(nodes) {
  const up = new Set(nodes.filter((n) => n.state === 'up').map((n) => n.id))
  const isUp = (id) => up.has(id)
  const holder = holders(isUp)
  drawRing($('#ring'), run.ring.arcs, colorOf, isUp, holder)
  const now = Object.fromEntries(run.nodes.map((n) => [n.id, 0]))
  run.ring.arcs.forEach((a, i) => {
    if (holder[i]) now[holder[i]] += share(a)
  })
  $('#shares tbody').replaceChildren(
    ...run.nodes.map((n) => {
      const tr = document.createElement('tr')
      tr.dataset.node = n.id
      tr.innerHTML = `<td><span class="swatch"></span>${n.id}</td><td data-field="share"></td><td data-field="holds"></td>`
      $('.swatch', tr).style.background = colorOf(n.id)
      $('[data-field="share"]', tr).textContent = pct(run.ring.shares[n.id])
      $('[data-field="holds"]', tr).textContent = pct(now[n.id])
      return tr
    }),
  )
}

function share(arc) {
  const span = (arc.to - arc.from + 2 ** 32) % 2 ** 32
  return (span === 0 ? 2 ** 32 : span) / 2 ** 32
}

function pct(fraction) {
  return `${(100 * fraction).toFixed(1)}%`
}

function addEvent(e) {
  const li = document.createElement('li')
  li.textContent = `${e.atS.toFixed(1)} s  ${e.text}`
  $('#events').append(li)
}

function status(text, name) {
  document.body.dataset.status = name
  if (name !== 'live') $('#status').textContent = text
}

const events = new EventSource('/events')
events.addEventListener('hello', (m) => {
  start(JSON.parse(m.data))
  status('live', 'live')
})
events.addEventListener('sample', (m) => {
  const sample = JSON.parse(m.data)
  record(sample)
  show(sample)
})
events.addEventListener('event', (m) => addEvent(JSON.parse(m.data)))
events.addEventListener('end', () => {
  events.close()
  status(`the run is over (${$('#status').textContent})`, 'ended')
})
events.addEventListener('error', () => {
  if (document.body.dataset.status !== 'ended') status('lost the demo: is it still running?', 'disconnected')
})
