// The real vouchd binary on a free port with a temporary database, as tests/common does it for
// the Rust tests: start `vouchd serve --listen 127.0.0.1:0`, read the admin client and the
// address from stderr, and talk to it with fetch.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const ADMIN_PREFIX = 'vouchd: created admin client ';
const LISTEN_PREFIX = 'vouchd listening on ';

/** The vouchd binary: $VOUCHD_BIN, else the debug build (test.sh builds it first). */
export function binary() {
  const bin = process.env.VOUCHD_BIN || join(ROOT, 'target', 'debug', 'vouchd');
  if (!existsSync(bin)) throw new Error(`no vouchd binary at ${bin}: run cargo build first (test.sh does)`);
  return bin;
}

/** The Chromium to drive: $CHROMIUM, else Debian's chromium on the PATH. */
export function chromiumPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const candidate of ['/usr/lib/chromium/chromium', '/usr/bin/chromium']) {
    if (existsSync(candidate)) return candidate;
  }
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('Chromium is not installed: run ui-tests/install.sh (test.sh does)');
  }
}

export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'vouchd-ui-'));
  const child = spawn(binary(), ['serve', '--db', join(dir, 'v.db'), '--listen', '127.0.0.1:0', '--threads', '4'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  const lines = createInterface({ input: child.stderr });
  const started = new Promise((resolveStart, reject) => {
    let admin = null;
    const timer = setTimeout(() => reject(new Error(`vouchd did not start in 20 s:\n${log.join('\n')}`)), 20000);
    child.on('exit', (code) => reject(new Error(`vouchd exited (${code}) before listening:\n${log.join('\n')}`)));
    lines.on('line', (line) => {
      log.push(line);
      if (line.startsWith(ADMIN_PREFIX)) admin = JSON.parse(line.slice(ADMIN_PREFIX.length));
      if (line.startsWith(LISTEN_PREFIX)) {
        clearTimeout(timer);
        if (!admin) reject(new Error(`no admin client printed:\n${log.join('\n')}`));
        else resolveStart({ base: line.slice(LISTEN_PREFIX.length).trim().replace(/\/$/, ''), admin });
      }
    });
  });
  const { base, admin } = await started;
  return new Server(base, admin, child, dir, log);
}

export class Server {
  constructor(base, admin, child, dir, log) {
    this.base = base;
    this.adminId = admin.client_id;
    this.adminSecret = admin.client_secret;
    this.child = child;
    this.dir = dir;
    this.log = log;
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  async token(id, secret) {
    const res = await fetch(`${this.base}/oauth/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: secret }),
    });
    const body = await res.json();
    if (!res.ok) throw new Error(`token for ${id}: ${res.status} ${JSON.stringify(body)}`);
    return body.access_token;
  }

  /** One JSON call; resolves to {status, body, headers}. */
  async api(method, path, token, body) {
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, body: json, text, headers: res.headers };
  }

  /** A group with `scopes` and one client of it: {id, secret, token}. */
  async client(group, scopes) {
    const admin = await this.token(this.adminId, this.adminSecret);
    const g = await this.api('POST', '/v1/client-groups', admin, { name: group, scopes });
    if (g.status !== 201) throw new Error(`group: ${g.text}`);
    const c = await this.api('POST', '/v1/clients', admin, { name: `${group}-client`, group });
    if (c.status !== 201) throw new Error(`client: ${c.text}`);
    const token = await this.token(c.body.client_id, c.body.client_secret);
    return { id: c.body.client_id, secret: c.body.client_secret, token };
  }
}
