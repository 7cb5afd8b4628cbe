// Drawing for the web view, on canvas with no library: the ring and the small per-second charts.

/** One color per node, in node order (n1, n2, ...; the demo has 8 at most). */
export const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#b07aa1', '#76b7b2', '#edc948', '#9c755f']
const CIRCLE = 2 ** 32

/** A canvas sized for the screen's pixel density; returns its 2D context in CSS pixels. */
function context(canvas) {
  const ratio = window.devicePixelRatio || 1
  const { width, height } = canvas.getBoundingClientRect()
  if (canvas.width !== Math.round(width * ratio)) {
    canvas.width = Math.round(width * ratio)
    canvas.height = Math.round(height * ratio)
  }
  const ctx = canvas.getContext('2d')
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
  ctx.clearRect(0, 0, width, height)
  return { ctx, width, height }
}

/** The angle of a hash on the circle: 0 at the top, clockwise. */
function angle(hash) {
  return (hash / CIRCLE) * 2 * Math.PI - Math.PI / 2
}

/**
 * The ring: the outer band colors each arc by its node (faded while the node is down), the inner
 * band by the node that holds the arc now (`holder[i]` for arc i, undefined when no node is up).
 */
export function drawRing(canvas, arcs, colorOf, isUp, holder) {
  const { ctx, width, height } = context(canvas)
  const cx = width / 2
  const cy = height / 2
  const outer = Math.min(cx, cy) - 4
  const band = (radius, thickness, colorAt, alphaAt) => {
    ctx.lineWidth = thickness
    arcs.forEach((a, i) => {
      const color = colorAt(i)
      if (!color) return
      const start = angle(a.from)
      const end = angle(a.to) + (a.to <= a.from ? 2 * Math.PI : 0)
      ctx.globalAlpha = alphaAt(i)
      ctx.strokeStyle = color
      ctx.beginPath()
      ctx.arc(cx, cy, radius, start, end)
      ctx.stroke()
    })
    ctx.globalAlpha = 1
  }
  band(
    outer - 12,
    24,
    (i) => colorOf(arcs[i].node),
    (i) => (isUp(arcs[i].node) ? 1 : 0.2),
  )
  band(
    outer - 46,
    24,
    (i) => holder[i] && colorOf(holder[i]),
    () => 0.85,
  )
  ctx.fillStyle = '#9aa4b2'
  ctx.font = '12px system-ui, sans-serif'
  ctx.textAlign = 'center'
  ctx.fillText(`${arcs.length} arcs`, cx, cy - 4)
  ctx.fillText('2³² hashes', cx, cy + 12)
}

/**
 * A small chart of the last values, one a second, newest on the right. `series` is one or more
 * arrays of numbers (null: no value that second) drawn in `colors`; the scale goes from 0 to
 * `max` or the largest value, whichever is larger, and is written in the corner.
 */
export function drawChart(canvas, series, colors, { max = 1, unit = '', seconds = 60 } = {}) {
  const { ctx, width, height } = context(canvas)
  const top = Math.max(max, ...series.flat().filter((v) => v !== null))
  const x = (i, n) => width - (n - 1 - i) * (width / (seconds - 1))
  const y = (v) => height - 2 - (v / top) * (height - 14)
  ctx.strokeStyle = '#2a3140'
  ctx.lineWidth = 1
  ctx.beginPath()
  ctx.moveTo(0, height - 1.5)
  ctx.lineTo(width, height - 1.5)
  ctx.stroke()
  series.forEach((values, s) => {
    const shown = values.slice(-seconds)
    ctx.strokeStyle = colors[s]
    ctx.lineWidth = 1.5
    ctx.beginPath()
    let drawing = false
    shown.forEach((v, i) => {
      // A second with no value breaks the line.
      if (v === null) drawing = false
      else if (drawing) ctx.lineTo(x(i, shown.length), y(v))
      else {
        ctx.moveTo(x(i, shown.length), y(v))
        drawing = true
      }
    })
    ctx.stroke()
  })
  ctx.fillStyle = '#9aa4b2'
  ctx.font = '10px system-ui, sans-serif'
  ctx.textAlign = 'left'
  ctx.fillText(`${Math.round(top)}${unit}`, 2, 10)
}
