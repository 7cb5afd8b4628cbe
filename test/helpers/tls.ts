// Certificates made at test time with Debian's openssl CLI (installed with apt-get if missing):
// a CA, peer certificates it signed (for 127.0.0.1 and localhost, usable as server and client), and
// a second, unrelated CA with a certificate of its own, for the "wrong CA" cases. Node can make keys
// but not certificates, hence the CLI. EC P-256 keys: quick to make; valid for one day.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A private key and the certificate for it, PEM. */
export interface KeyPair {
  key: string
  cert: string
}

export interface TestPki {
  /** The CA every peer trusts, PEM. */
  ca: string
  /** Peer certificates signed by `ca`, as many as asked for. */
  peers: KeyPair[]
  /** Another CA, unrelated to `ca`, PEM. */
  wrongCa: string
  /** A peer certificate signed by `wrongCa`. */
  wrongPeer: KeyPair
}

let available: boolean | undefined

/** Whether the openssl CLI runs, after installing it with apt-get once if it was missing. */
export function opensslAvailable(): boolean {
  if (available !== undefined) return available
  const works = () => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }
  if (!works()) {
    try {
      execFileSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl'], { stdio: 'ignore' })
    } catch {
      // no apt-get, no network or not root: works() says so and the caller skips
    }
  }
  available = works()
  return available
}

/** A fresh PKI with `peerCount` peer certificates. Made in a temporary directory, removed before this returns. */
export function makePki(peerCount: number): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'peercache-tls-'))
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  const read = (file: string) => readFileSync(join(dir, file), 'utf8')
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  const makeCa = (name: string) => {
    run('req', '-x509', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=peercache test ${name}`)
    return read(`${name}.crt`)
  }
  let serial = 1
  const signedBy = (ca: string, name: string): KeyPair => {
    run('req', ...newKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`)
    const sign = ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-days', '1']
    run(...sign, '-set_serial', String(serial++), '-extfile', 'peer.ext', '-out', `${name}.crt`)
    return { key: read(`${name}.key`), cert: read(`${name}.crt`) }
  }
  try {
    // Peers are servers and clients both (mutual TLS), reached by IP on loopback.
    writeFileSync(join(dir, 'peer.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n')
    const ca = makeCa('ca')
    const wrongCa = makeCa('wrong-ca')
    return {
      ca,
      peers: Array.from({ length: peerCount }, (_, i) => signedBy('ca', `peer${i}`)),
      wrongCa,
      wrongPeer: signedBy('wrong-ca', 'stranger'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
