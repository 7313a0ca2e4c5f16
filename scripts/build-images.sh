#!/usr/bin/env bash
# Builds the clover-cd images on a machine that can pull no base image and has no Docker engine, from
# Debian packages, with the same layout as the Dockerfiles (which users build elsewhere FROM node:20):
#
#   clover-cd:<version>          /app/{package.json,bin,dist,node_modules (production only),examples,deploy/sdc}
#                                node /app/bin/clover-cd.js, uid 10001, read-only root friendly
#   clover-cd/clovisor:<version> the same plus bpftool, iproute2 (tc), util-linux (nsenter, mount), libbpf,
#                                and /app/build/clovisor/ (the BPF object and helpers, built with clang here)
#   clover-cd-jmeter:<version>   (--jmeter) clover-cd plus Debian's JMeter and a JRE, launcher precompiled
#
#   bash scripts/build-images.sh [--jmeter] [--no-clovisor] [--no-check]
#
# How: `mmdebstrap` assembles each root filesystem from Debian bookworm (the mirror this machine's apt
# uses); Node.js 20 is not in bookworm (18.19), so the node binary comes from this machine's installed
# `nodejs` package (checked with `dpkg -V`; NODE_BIN=/path/to/node to use another one >= 20.19) — the
# official node:20 images carry the same nodejs.org build. `podman import` turns the root filesystem into
# an image (config: entrypoint, user, workdir, env) and `podman save` writes an OCI archive to
# build/images/. Checks (unless --no-check): the image's files are exported again (`podman create` +
# `podman export`) and run in new mount and PID namespaces with `chroot` as uid 10001 on a read-only root
# with tmpfs /tmp and /var/lib/clover-cd, because podman's runtime cannot start containers in this
# sandbox (crun: setrlimit RLIMIT_NOFILE: Operation not permitted): `clover-cd --version`, then `serve`
# answering GET /healthz. Sizes are printed at the end.
#
# Needs root (mmdebstrap, unshare, chroot), mmdebstrap, podman, npm with the registry or its cache, and for
# clovisor clang, llvm, bpftool, libbpf-dev and kernel BTF (scripts/setup.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JMETER=0 CLOVISOR=1 CHECK=1
for a in "$@"; do
  case $a in
    --jmeter) JMETER=1 ;;
    --no-clovisor) CLOVISOR=0 ;;
    --no-check) CHECK=0 ;;
    *) echo "usage: $0 [--jmeter] [--no-clovisor] [--no-check]" >&2; exit 2 ;;
  esac
done
log() { echo "[build-images] $*" >&2; }
die() { log "error: $*"; exit 4; }

[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap, unshare, chroot)"
for c in mmdebstrap podman npm; do command -v "$c" >/dev/null || die "$c is missing (apt-get install -y mmdebstrap podman npm)"; done

VERSION=$(node -p "require('./package.json').version")
OUT=$ROOT/build/images
WORK=$(mktemp -d /tmp/clover-images.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

MIRROR=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | head -1 | awk '{print $2}')
[[ -n "$MIRROR" ]] || MIRROR=$(grep -hsE '^deb ' /etc/apt/sources.list | head -1 | awk '{print $2}')
[[ -n "$MIRROR" ]] || MIRROR=http://deb.debian.org/debian
SECURITY=${MIRROR%/debian}/debian-security
SOURCES=("deb $MIRROR bookworm main" "deb $SECURITY bookworm-security main")

NODE_BIN=${NODE_BIN:-$(command -v node)}
NODE_VERSION=$("$NODE_BIN" -p 'process.versions.node')
node -e "const [a,b]=process.argv[1].split('.').map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)" "$NODE_VERSION" ||
  die "$NODE_BIN is Node $NODE_VERSION; clover-cd needs >= 20.19 (NODE_BIN=...)"
if [[ $NODE_BIN == /usr/bin/node ]] && dpkg -S /usr/bin/node >/dev/null 2>&1; then
  dpkg -V "$(dpkg -S /usr/bin/node | cut -d: -f1)" 2>&1 | grep -q ' /usr/bin/node$' && die "/usr/bin/node differs from its package (dpkg -V)"
fi

# 1. The application, as the Dockerfile's build stage makes it: compiled dist/, production dependencies only.
log "npm run build; production node_modules"
npm run build --silent
APP=$WORK/app
mkdir -p "$APP/deploy"
cp -a package.json package-lock.json bin dist examples "$APP/"
cp -a deploy/sdc "$APP/deploy/"
(cd "$APP" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
rm -f "$APP/package-lock.json"
# Type declarations and source maps are never read at run time (about 70 MB, mostly the Kubernetes client).
find "$APP/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

# Common to every image: passwd/group with the unprivileged user, writable mount points, the app, node.
finish_rootfs() {
  local fs=$1
  printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nclover:x:10001:10001:clover-cd:/var/lib/clover-cd:/usr/sbin/nologin\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nclover:x:10001:\n' >"$fs/etc/group"
  mkdir -p "$fs/tmp" "$fs/var/lib/clover-cd" "$fs/usr/local/bin" "$fs/proc" "$fs/dev" "$fs/sys"
  chmod 1777 "$fs/tmp"
  chown 10001:10001 "$fs/var/lib/clover-cd"
  install -m 0755 "$NODE_BIN" "$fs/usr/local/bin/node"
  cp -a "$APP" "$fs/app"
  chown -R 0:0 "$fs/app"
  rm -rf "$fs/usr/share/doc" "$fs/usr/share/man" "$fs/usr/share/info" "$fs/usr/share/locale" "$fs/var/cache/apt" "$fs/var/lib/apt/lists"
}

# The image config, the same as the Dockerfiles'.
import_image() {
  local fs=$1 tag=$2 entry=$3
  tar -C "$fs" --numeric-owner -c . | podman import --quiet \
    --change "ENTRYPOINT $entry" \
    --change 'USER 10001:10001' \
    --change 'WORKDIR /var/lib/clover-cd' \
    --change 'ENV NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd HOME=/tmp XDG_CACHE_HOME=/tmp/cache PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
    --change 'EXPOSE 8080' \
    - "localhost/$tag" >/dev/null
  local file=$OUT/${tag//[\/:]/-}.oci.tar
  rm -f "$file"
  podman save --quiet --format oci-archive -o "$file" "localhost/$tag" >/dev/null
  log "built localhost/$tag → ${file#"$ROOT"/}"
}

# 2. clover-cd: glibc, libstdc++ and CA certificates from Debian (extracted: no shell, no package manager).
log "clover-cd root filesystem (mmdebstrap, bookworm from $MIRROR)"
FS=$WORK/clover-cd
mmdebstrap --quiet --variant=extract --include=libc6,libstdc++6,libgcc-s1,ca-certificates,tzdata bookworm "$FS" "${SOURCES[@]}"
# ca-certificates' maintainer script did not run: assemble the bundle it would write (Node has its own
# store; this one is for NODE_OPTIONS=--use-openssl-ca and child processes).
mkdir -p "$FS/etc/ssl/certs"
cat "$FS"/usr/share/ca-certificates/mozilla/*.crt >"$FS/etc/ssl/certs/ca-certificates.crt"
finish_rootfs "$FS"
import_image "$FS" "clover-cd:$VERSION" '["/usr/local/bin/node", "/app/bin/clover-cd.js"]'

# 3. clovisor: the same application with the eBPF tools, and the BPF object built here.
if ((CLOVISOR)); then
  log "clovisor: compile the BPF object and helpers (scripts/setup.d/clovisor.sh)"
  bash scripts/setup.d/clovisor.sh
  for f in clovisor.bpf.o clovisor-tp-attach clovisor-events; do [[ -f build/clovisor/$f ]] || die "build/clovisor/$f was not built (clang, bpftool, libbpf-dev, kernel BTF)"; done
  FS=$WORK/clovisor
  mmdebstrap --quiet --variant=minbase --include=bpftool,iproute2,libbpf1,libelf1,util-linux,mount,ca-certificates bookworm "$FS" "${SOURCES[@]}"
  finish_rootfs "$FS"
  mkdir -p "$FS/app/build/clovisor"
  cp build/clovisor/clovisor.bpf.o build/clovisor/clovisor-tp-attach build/clovisor/clovisor-events "$FS/app/build/clovisor/"
  ln -sf /app/bin/clover-cd.js "$FS/usr/local/bin/clover-cd"
  # clovisor runs as root with the capabilities the DaemonSet grants (deploy/clovisor/daemonset.yaml).
  tar -C "$FS" --numeric-owner -c . | podman import --quiet \
    --change 'ENTRYPOINT ["/usr/local/bin/node", "/app/bin/clover-cd.js"]' --change 'USER 0:0' --change 'WORKDIR /run/clover-cd' \
    --change 'ENV NODE_ENV=production CLOVISOR_STATE_DIR=/run/clover-cd/clovisor HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
    --change 'EXPOSE 9464' - "localhost/clover-cd/clovisor:$VERSION" >/dev/null
  rm -f "$OUT/clover-cd-clovisor-$VERSION.oci.tar"
  podman save --quiet --format oci-archive -o "$OUT/clover-cd-clovisor-$VERSION.oci.tar" "localhost/clover-cd/clovisor:$VERSION" >/dev/null
  log "built localhost/clover-cd/clovisor:$VERSION → build/images/clover-cd-clovisor-$VERSION.oci.tar"
fi

# 4. clover-cd-jmeter: clover-cd plus JMeter (Debian's 2.13 with the system XStream needs clover-cd's
# allow-list launcher; it is compiled here so the image needs a JRE only).
if ((JMETER)); then
  log "clover-cd-jmeter root filesystem"
  FS=$WORK/jmeter
  mmdebstrap --quiet --variant=minbase --include=jmeter,default-jdk-headless bookworm "$FS" "${SOURCES[@]}"
  finish_rootfs "$FS"
  mkdir -p "$FS/app/jmeter-launcher"
  # javac finds its libraries through /proc/self/exe: give the chroot a /proc of its own.
  unshare --mount --pid --fork --propagation private sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" javac -nowarn -cp /usr/share/jmeter/bin/ApacheJMeter.jar -d /app/jmeter-launcher /app/dist/jmeter/launcher/JMeterXStreamFix.java' sh "$FS"
  touch "$FS"/app/jmeter-launcher/*.class
  tar -C "$FS" --numeric-owner -c . | podman import --quiet \
    --change 'ENTRYPOINT ["/usr/local/bin/node", "/app/bin/clover-cd.js"]' --change 'USER 10001:10001' --change 'WORKDIR /var/lib/clover-cd' \
    --change 'ENV NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd CLOVER_CD_JMETER_LAUNCHER_DIR=/app/jmeter-launcher HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin' \
    --change 'EXPOSE 8080' - "localhost/clover-cd-jmeter:$VERSION" >/dev/null
  rm -f "$OUT/clover-cd-jmeter-$VERSION.oci.tar"
  podman save --quiet --format oci-archive -o "$OUT/clover-cd-jmeter-$VERSION.oci.tar" "localhost/clover-cd-jmeter:$VERSION" >/dev/null
  log "built localhost/clover-cd-jmeter:$VERSION"
fi

# 5. Check what was built: the files of the image itself (podman export), run read-only as uid 10001 in new
# mount and PID namespaces. The clover-cd image has no shell and no env: chroot starts node directly.
if ((CHECK)); then
  CHK=$WORK/check
  mkdir -p "$CHK"
  log "check clover-cd:$VERSION: --version and serve /healthz (chroot as uid 10001, read-only root)"
  run_clover() {
    local dir=$CHK/clover-cd
    if [[ ! -d $dir/app ]]; then
      mkdir -p "$dir"
      local cid
      cid=$(podman create "localhost/clover-cd:$VERSION")
      podman export "$cid" | tar -C "$dir" -x
      podman rm "$cid" >/dev/null
    fi
    exec unshare --mount --pid --fork --kill-child --propagation private sh -c '
      set -e
      fs=$1; shift
      mount --bind "$fs" "$fs"; mount -o remount,bind,ro "$fs"
      mount -t proc proc "$fs/proc"
      mount --rbind /dev "$fs/dev"
      mount -t tmpfs -o mode=1777,size=64m tmpfs "$fs/tmp"
      mount -t tmpfs -o uid=10001,gid=10001,size=64m tmpfs "$fs/var/lib/clover-cd"
      export HOME=/tmp CLOVER_CD_STATE_DIR=/var/lib/clover-cd KUBECONFIG=
      exec chroot --userspec=10001:10001 "$fs" /usr/local/bin/node /app/bin/clover-cd.js "$@"
    ' sh "$dir" "$@"
  }
  got=$(run_clover --version)
  [[ $got == "$VERSION" ]] || die "clover-cd --version printed '$got', expected $VERSION"
  log "  clover-cd --version → $got"
  PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  run_clover serve --port "$PORT" --host 127.0.0.1 --allow-unauthenticated >"$WORK/serve.log" 2>&1 &
  SERVE=$!
  ok=""
  for _ in $(seq 100); do
    if curl -sf --max-time 2 "http://127.0.0.1:$PORT/healthz" >"$WORK/healthz"; then ok=1; break; fi
    kill -0 $SERVE 2>/dev/null || break
    sleep 0.2
  done
  # unshare ignores SIGTERM while it waits: stop the server itself (SIGTERM, as Kubernetes would), then
  # unshare, whose --kill-child takes down anything left in the namespace.
  pkill -TERM -P $SERVE 2>/dev/null || true
  for _ in $(seq 50); do kill -0 $SERVE 2>/dev/null || break; sleep 0.1; done
  kill -KILL $SERVE 2>/dev/null || true
  wait $SERVE 2>/dev/null || true
  [[ -n $ok ]] || { cat "$WORK/serve.log" >&2; die "serve in the image did not answer /healthz"; }
  log "  serve → GET /healthz: $(head -c 200 "$WORK/healthz")"
  log "  $(grep -m1 'listening' "$WORK/serve.log")"
fi

log "sizes (uncompressed root filesystem as podman reports it; OCI archive on disk):"
for t in "clover-cd:$VERSION" "clover-cd/clovisor:$VERSION" "clover-cd-jmeter:$VERSION"; do
  podman image exists "localhost/$t" || continue
  f=$OUT/${t//[\/:]/-}.oci.tar
  [[ $t == clover-cd/clovisor:* ]] && f=$OUT/clover-cd-clovisor-$VERSION.oci.tar
  printf '  %-32s %10s   %s %s\n' "$t" "$(podman image inspect --format '{{.Size}}' "localhost/$t" | numfmt --to=iec)" "$(du -h "$f" | cut -f1)" "${f#"$ROOT"/}" >&2
done
