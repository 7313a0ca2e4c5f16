/**
 * Runs a container of a Kubernetes manifest in an exported image the way a container runtime and the kubelet
 * would, without either (podman cannot start containers on this machine): the image's root filesystem from its
 * OCI archive under a writable overlay, new mount and PID namespaces, the image's Entrypoint/Env/User/WorkingDir
 * from its config, the container's command, args and env with the kubelet's $(VAR) expansion, and `chroot`.
 * The command line is exactly what the manifest says: nothing is added, no shell is involved.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
  Labels?: Record<string, string>;
}
export interface Image {
  name: string;
  rootfs: string;
  config: ImageConfig;
}
export interface Container {
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
}
export interface RunOptions {
  /** Values the kubelet would fill in for `valueFrom.fieldRef` (e.g. metadata.name). */
  fieldRefs?: Record<string, string>;
  /** Variables the kubelet adds before the container's own (KUBERNETES_SERVICE_HOST/PORT). */
  serviceEnv?: Record<string, string>;
  /** Host paths bound into the container (ConfigMap and Secret volumes, service account files). */
  mounts?: Array<{ source: string; target: string }>;
  /** /etc/hosts as the kubelet writes it (pod hostname, and here the cluster DNS names a test needs). */
  hosts?: string;
  /** Run in this pod's network and UTS namespaces (see startPod). */
  pod?: Pod;
  timeoutMs?: number;
}
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  argv: string[];
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The image's files and config from an OCI archive (`podman save --format oci-archive`). */
export function extractImage(archive: string, dir: string, name: string): Image {
  const oci = join(dir, `${name}.oci`);
  const rootfs = join(dir, name);
  mkdirSync(oci, { recursive: true });
  mkdirSync(rootfs, { recursive: true });
  const tar = (args: string[]) => {
    const r = spawnSync('tar', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
  };
  tar(['-xf', archive, '-C', oci]);
  const blob = (digest: string) => join(oci, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string }>;
  };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8')) as {
    config: { digest: string };
    layers: Array<{ digest: string }>;
  };
  for (const layer of manifest.layers) tar(['--numeric-owner', '-xpf', blob(layer.digest), '-C', rootfs]);
  const config = (JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8')) as { config: ImageConfig })
    .config;
  rmSync(oci, { recursive: true, force: true });
  return { name, rootfs, config };
}

/** The kubelet's $(VAR) expansion of command and args: defined variables are replaced, $$ is a literal $. */
export function expandKubeletVars(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && name in env ? env[name] : m,
  );
}

/** Container env as the kubelet builds it: the image's Env, then the container's, in order, each expanded. */
export function containerEnv(
  image: Image,
  c: Container,
  fieldRefs: Record<string, string> = {},
  serviceEnv: Record<string, string> = {},
): Record<string, string> {
  const env: Record<string, string> = {
    ...Object.fromEntries(
      (image.config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    ),
    ...serviceEnv,
  };
  for (const e of c.env ?? []) {
    const ref = e.valueFrom?.fieldRef?.fieldPath;
    if (ref !== undefined && !(ref in fieldRefs))
      throw new Error(`no value for fieldRef ${ref} of env ${e.name}`);
    env[e.name] = ref !== undefined ? fieldRefs[ref] : expandKubeletVars(e.value ?? '', env);
  }
  return env;
}

/** The argv the runtime executes: command replaces the Entrypoint (and drops Cmd), args replace Cmd. */
export function containerArgv(image: Image, c: Container, env: Record<string, string>): string[] {
  const argv = c.command
    ? [...c.command, ...(c.args ?? [])]
    : [...(image.config.Entrypoint ?? []), ...(c.args ?? image.config.Cmd ?? [])];
  return argv.map((a) => expandKubeletVars(a, env));
}

/** A pod's network (loopback up) and UTS namespaces, held by a process that ends when the pod is stopped. */
export interface Pod {
  pid: number;
  stop: () => void;
}
export async function startPod(hostname: string): Promise<Pod> {
  const holder: ChildProcess = spawn(
    'unshare',
    ['--net', '--uts', 'sh', '-c', `ip link set lo up && hostname ${q(hostname)} && echo up && exec cat`],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(`the pod's namespaces did not come up (exit ${code})`)));
  });
  return { pid: holder.pid!, stop: () => holder.kill('SIGKILL') };
}

/** Run one container of a manifest in the image; resolves when its process exits (or is killed at the timeout). */
export function runContainer(
  image: Image,
  c: Container,
  opts: RunOptions = {},
): Promise<RunResult> & { child: ChildProcess; signal: (sig: NodeJS.Signals) => void; kill: () => void } {
  const env = containerEnv(image, c, opts.fieldRefs, opts.serviceEnv);
  const argv = containerArgv(image, c, env);
  const layer = mkdtempSync(join(tmpdir(), `clover-layer-${image.name}-`));
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((d) => join(layer, d));
  [upper, work, merged].forEach((d) => mkdirSync(d));
  const hostsFile = join(layer, 'hosts');
  writeFileSync(hostsFile, opts.hosts ?? '127.0.0.1 localhost\n');
  const user = image.config.User || '0:0';
  const lines = [
    'set -e',
    `mount -t overlay overlay -o lowerdir=${q(image.rootfs)},upperdir=${q(upper)},workdir=${q(work)} ${q(merged)}`,
    `mount -t proc proc ${q(merged)}/proc`,
    `mount --rbind /dev ${q(merged)}/dev`,
    `mount -t tmpfs -o mode=1777 tmpfs ${q(merged)}/tmp`,
    `touch ${q(merged)}/etc/hosts && mount --bind ${q(hostsFile)} ${q(merged)}/etc/hosts`,
    // A runtime creates a missing working directory, as Docker does for WORKDIR.
    `mkdir -p ${q(merged + (image.config.WorkingDir || '/'))}`,
    ...(opts.mounts ?? []).map(
      (m) => `mkdir -p ${q(merged + m.target)} && mount --bind ${q(m.source)} ${q(merged + m.target)}`,
    ),
    // This shell stays PID 1 of the namespace, as root, so that it keeps unshare's --kill-child signal (a
    // process that changes its user loses it): when unshare goes, the namespace and the container go with it.
    'set +e',
    `chroot --userspec=${q(user)} ${q(merged)} /usr/bin/env -i -C ${q(image.config.WorkingDir || '/')} ${Object.entries(
      env,
    )
      .map(([k, v]) => q(`${k}=${v}`))
      .join(' ')} ${argv.map(q).join(' ')} &`,
    'wait $!',
  ];
  const ns = opts.pod
    ? ['nsenter', `--net=/proc/${opts.pod.pid}/ns/net`, `--uts=/proc/${opts.pod.pid}/ns/uts`]
    : [];
  const child = spawn(
    ns[0] ?? 'unshare',
    [
      ...ns.slice(1),
      ...(ns.length ? ['unshare'] : []),
      '--mount',
      '--pid',
      '--fork',
      '--kill-child',
      '--propagation',
      'private',
      'sh',
      '-c',
      lines.join('\n'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      // The overlay was mounted in the container's own mount namespace: it is gone with it.
      if (existsSync(layer)) rmSync(layer, { recursive: true, force: true });
      resolve({ code, stdout, stderr, argv });
    });
  });
  // unshare waits for its child and ignores SIGTERM meanwhile: signal the container's main process, the child of
  // the namespace's PID 1 (the shell above), as the kubelet signals a container.
  const signal = (sig: NodeJS.Signals) => {
    const init = spawnSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).stdout.trim();
    if (init) spawnSync('pkill', [`--signal=${sig}`, '-P', init]);
  };
  /** Ends the container and everything in its namespaces at once. */
  const kill = () => child.kill('SIGKILL');
  return Object.assign(done, { child, signal, kill });
}
