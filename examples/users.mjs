// What every example caches: user records from a slow store. `fetchUser` stands in for your database
// (30 ms a record), `usersGroup` is the peercache group in front of it, and `answerUsers` is the plain
// node:http app around it. The examples import these, so each shows only how peercache is wired into
// its kind of app.
import { setTimeout as sleep } from 'node:timers/promises'

/** A user record as the store has it. `signal` aborts the read when no caller waits for it any more. */
export async function fetchUser(id, { signal } = {}) {
  await sleep(30, undefined, { signal })
  return { id, name: `User ${id}` }
}

/**
 * The `users` group of a peer: JSON values, up to 16 MiB in this process, each loaded from the store
 * by the key's owner only. `group.stats().loads` counts this process's loads from the store.
 */
export function usersGroup(peer) {
  return peer.group('users', {
    maxBytes: 16 * 1024 * 1024,
    codec: 'json',
    load: (id, { signal }) => fetchUser(id, { signal }),
  })
}

/** A node:http request listener: GET /users/:id (the record, through the cache), GET /stats (the group's stats). */
export function answerUsers(users) {
  return async (req, res) => {
    const user = /^\/users\/([^/?]+)$/.exec(req.url ?? '')
    try {
      if (req.method === 'GET' && user) return send(res, 200, await users.get(decodeURIComponent(user[1])))
      if (req.method === 'GET' && req.url === '/stats') return send(res, 200, users.stats())
      send(res, 404, { error: 'not found' })
    } catch (err) {
      send(res, 500, { error: err.message })
    }
  }
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}
