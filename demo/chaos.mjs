// The scripted failure: under load, one node is killed with SIGKILL (no goodbye to anyone), and
// later started again on the same port. The cluster's origin loads are read at both moments, so
// the summary can say how many loads came before, during and after the outage.
import { setTimeout as sleep } from 'node:timers/promises'
import { originLoadsOf } from './nodes.mjs'

/** When the kill comes, as a share of the run. */
const KILL_AT = 0.4
/** When the restart comes, as a share of the run. */
const RESTART_AT = 0.7

/** Which node dies and when (ms from the start of the load); null when chaos is off or there is no other node to take over. */
export function planChaos(nodes, durationMs, enabled) {
  if (!enabled || nodes.length < 2) return null
  return { victim: nodes[1], killAtMs: Math.round(durationMs * KILL_AT), restartAtMs: Math.round(durationMs * RESTART_AT) }
}

/**
 * Runs the plan against the clock started at `startedAt` (performance.now()).
 * Resolves with what happened; stops early (restarting nothing) when `signal` aborts.
 */
export async function runChaos(plan, nodes, startedAt, signal, log) {
  const outcome = { killed: null, restarted: null, killedAtMs: null, backAtMs: null, loadsAtKill: null, loadsAtBack: null, error: null }
  const until = async (ms) => {
    const wait = startedAt + ms - performance.now()
    if (wait > 0) await sleep(wait, undefined, { signal })
  }
  const { victim } = plan
  try {
    await until(plan.killAtMs)
    // Read every node at the same moment, the victim last, right before its SIGKILL.
    await Promise.all(nodes.filter((n) => n !== victim).map((n) => n.poll()))
    await victim.kill()
    outcome.killed = victim.id
    outcome.killedAtMs = Math.round(performance.now() - startedAt)
    outcome.loadsAtKill = originLoadsOf(nodes)
    log(`chaos: ${victim.id} killed with SIGKILL`)

    await until(plan.restartAtMs)
    log(`chaos: restarting ${victim.id}`)
    await victim.start()
    await Promise.all(nodes.map((n) => n.poll()))
    outcome.restarted = victim.id
    outcome.backAtMs = Math.round(performance.now() - startedAt)
    outcome.loadsAtBack = originLoadsOf(nodes)
    log(`chaos: ${victim.id} is back`)
  } catch (err) {
    if (signal?.aborted) return outcome
    outcome.error = err?.message ?? String(err)
    log(`chaos: ${outcome.error}`)
  }
  return outcome
}
