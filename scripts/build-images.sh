#!/usr/bin/env bash
# Builds the clover-cd images on a machine that can pull no base image and has no Docker engine, from
# Debian packages, with the same layout, entrypoint and PATH as the Dockerfiles (which users build elsewhere
# FROM node:20). Names: $CLOVER_CD_REGISTRY/<image>:<package version>, CLOVER_CD_REGISTRY default
# ghcr.io/clover-cd (the names deploy/ and the generated manifests use; set your own to push elsewhere):
#
#   clover-cd          /app/{package.json,bin,dist,node_modules (production only),examples,deploy/sdc}
#                      uid 10001, read-only root friendly; glibc, libstdc++, CA certificates, node, env — no shell
#   clovisor           the same plus bpftool, iproute2 (tc), util-linux (nsenter, mount), libbpf,
#                      and /app/build/clovisor/ (the BPF object and helpers, built with clang here); root
#   clover-cd-jmeter   (--jmeter) clover-cd plus Debian's JMeter and a JRE, launcher precompiled
#
# In every image /usr/local/bin/node is Node.js, /usr/local/bin/clover-cd links to /app/bin/clover-cd.js, and
# the entrypoint is ["clover-cd"]: so anything that runs in one is exec form, `["clover-cd", "stage", …]`. The
# bin script's `#!/usr/bin/env node` needs /usr/bin/env, which node:20-bookworm-slim has from coreutils; the
# clover-cd image, which has no coreutils, gets that one binary from Debian's coreutils package.
#
#   [CLOVER_CD_REGISTRY=registry.example.com/team] bash scripts/build-images.sh [--jmeter] [--no-clovisor] [--no-check]
#
# How: `mmdebstrap` assembles each root filesystem from Debian bookworm (the mirror this machine's apt
# uses); Node.js 20 is not in bookworm (18.19), so the node binary comes from this machine's installed
# `nodejs` package (checked with `dpkg -V`; NODE_BIN=/path/to/node to use another one >= 20.19) — the
# official node:20 images carry the same nodejs.org build. `podman import` turns the root filesystem into
# an image (config: entrypoint, user, workdir, env) and `podman save` writes an OCI archive to
# build/images/ (push it with `podman push` or `skopeo copy oci-archive:…`). Checks (unless --no-check):
# the image's files are exported again (`podman create` + `podman export`) and run in new mount and PID
# namespaces with `chroot` as uid 10001 on a read-only root with tmpfs /tmp and /var/lib/clover-cd, because
# podman's runtime cannot start containers in this sandbox (crun: setrlimit RLIMIT_NOFILE: Operation not
# permitted): `clover-cd --version` through the entrypoint and PATH, then `serve` answering GET /healthz.
# `npm run test:images` then runs every generated command line in the images. Sizes are printed at the end.
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
REGISTRY=${CLOVER_CD_REGISTRY:-ghcr.io/clover-cd}
[[ $REGISTRY =~ ^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$ ]] || { echo "CLOVER_CD_REGISTRY must be a registry host with an optional path, e.g. ghcr.io/clover-cd, got '$REGISTRY'" >&2; exit 2; }
# The same everywhere, as in the Dockerfiles: the image's PATH finds clover-cd and node.
PATH_IN_IMAGE=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
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

# Common to every image: passwd/group with the unprivileged user, writable mount points, the app, node, and
# clover-cd on PATH (the bin script's shebang finds node through /usr/bin/env and PATH).
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
  ln -sfn /app/bin/clover-cd.js "$fs/usr/local/bin/clover-cd"
  [[ -x $fs/usr/bin/env ]] || die "$fs has no /usr/bin/env: the clover-cd launcher's shebang needs it"
  rm -rf "$fs/usr/share/doc" "$fs/usr/share/man" "$fs/usr/share/info" "$fs/usr/share/locale" "$fs/var/cache/apt" "$fs/var/lib/apt/lists"
}

# The image config, the same as the Dockerfiles': entrypoint ["clover-cd"], PATH, user, workdir, env.
#   import_image <rootfs> <image> <user> <workdir> <port> <env...>
import_image() {
  local fs=$1 name=$2 user=$3 workdir=$4 port=$5
  shift 5
  local ref=$REGISTRY/$name:$VERSION
  # One --change per variable and label: podman import reads `ENV a=1 b=2` as one variable a="1 b=2".
  local changes=(--change 'ENTRYPOINT ["clover-cd"]' --change "USER $user" --change "WORKDIR $workdir" --change "EXPOSE $port")
  local kv
  for kv in "$@" "PATH=$PATH_IN_IMAGE"; do changes+=(--change "ENV $kv"); done
  for kv in "org.opencontainers.image.title=$name" "org.opencontainers.image.version=$VERSION" "org.opencontainers.image.ref.name=$ref"; do changes+=(--change "LABEL $kv"); done
  tar -C "$fs" --numeric-owner -c . | podman import --quiet "${changes[@]}" - "$ref" >/dev/null
  local file=$OUT/$name-$VERSION.oci.tar
  rm -f "$file"
  podman save --quiet --format oci-archive -o "$file" "$ref" >/dev/null
  log "built $ref → ${file#"$ROOT"/}"
}

# 2. clover-cd: glibc, libstdc++ and CA certificates from Debian (extracted: no shell, no package manager),
# and /usr/bin/env alone from Debian's coreutils.
log "clover-cd root filesystem (mmdebstrap, bookworm from $MIRROR)"
FS=$WORK/clover-cd
mmdebstrap --quiet --variant=extract --include=libc6,libstdc++6,libgcc-s1,ca-certificates,tzdata bookworm "$FS" "${SOURCES[@]}"
# ca-certificates' maintainer script did not run: assemble the bundle it would write (Node has its own
# store; this one is for NODE_OPTIONS=--use-openssl-ca and child processes).
mkdir -p "$FS/etc/ssl/certs"
cat "$FS"/usr/share/ca-certificates/mozilla/*.crt >"$FS/etc/ssl/certs/ca-certificates.crt"
(cd "$WORK" && apt-get download -q=2 -o APT::Sandbox::User=root coreutils) || die "apt-get download coreutils failed"
mkdir -p "$WORK/coreutils"
dpkg-deb -x "$WORK"/coreutils_*.deb "$WORK/coreutils"
install -D -m 0755 "$WORK/coreutils/usr/bin/env" "$FS/usr/bin/env"
finish_rootfs "$FS"
import_image "$FS" clover-cd 10001:10001 /var/lib/clover-cd 8080 NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd HOME=/tmp XDG_CACHE_HOME=/tmp/cache

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
  # clovisor runs as root with the capabilities the DaemonSet grants (deploy/clovisor/daemonset.yaml).
  import_image "$FS" clovisor 0:0 /run/clover-cd 9464 NODE_ENV=production CLOVISOR_STATE_DIR=/run/clover-cd/clovisor HOME=/tmp
fi

# 4. clover-cd-jmeter: clover-cd plus JMeter (Debian's 2.13 with the system XStream needs clover-cd's
# allow-list launcher; it is compiled here so the image needs a JRE only).
if ((JMETER)); then
  log "clover-cd-jmeter root filesystem"
  FS=$WORK/jmeter
  # jmeter-http (HTTP samplers) is only a Recommends of jmeter, which mmdebstrap leaves out: without it no plan loads.
  mmdebstrap --quiet --variant=minbase --include=jmeter,jmeter-http,default-jdk-headless bookworm "$FS" "${SOURCES[@]}"
  finish_rootfs "$FS"
  mkdir -p "$FS/app/jmeter-launcher"
  # javac finds its libraries through /proc/self/exe: give the chroot a /proc of its own.
  unshare --mount --pid --fork --propagation private sh -c 'mount -t proc proc "$1/proc" && exec chroot "$1" javac -nowarn -cp /usr/share/jmeter/bin/ApacheJMeter.jar -d /app/jmeter-launcher /app/dist/jmeter/launcher/JMeterXStreamFix.java' sh "$FS"
  touch "$FS"/app/jmeter-launcher/*.class
  import_image "$FS" clover-cd-jmeter 10001:10001 /var/lib/clover-cd 8080 NODE_ENV=production CLOVER_CD_STATE_DIR=/var/lib/clover-cd CLOVER_CD_JMETER_LAUNCHER_DIR=/app/jmeter-launcher HOME=/tmp XDG_CACHE_HOME=/tmp/cache
fi

# 5. Check what was built: the files of the image itself (podman export), run read-only as uid 10001 in new
# mount and PID namespaces, through the entrypoint as a runtime starts it: `clover-cd` found on the image's
# PATH (env -i leaves nothing of this machine's environment), its shebang resolved by the image's /usr/bin/env.
if ((CHECK)); then
  CHK=$WORK/check
  mkdir -p "$CHK"
  log "check $REGISTRY/clover-cd:$VERSION: --version and serve /healthz (chroot as uid 10001, read-only root)"
  run_clover() {
    local dir=$CHK/clover-cd
    if [[ ! -d $dir/app ]]; then
      mkdir -p "$dir"
      local cid
      cid=$(podman create "$REGISTRY/clover-cd:$VERSION")
      podman export "$cid" | tar -C "$dir" -x
      podman rm "$cid" >/dev/null
    fi
    exec unshare --mount --pid --fork --kill-child --propagation private sh -c '
      set -e
      fs=$1 path=$2; shift 2
      mount --bind "$fs" "$fs"; mount -o remount,bind,ro "$fs"
      mount -t proc proc "$fs/proc"
      mount --rbind /dev "$fs/dev"
      mount -t tmpfs -o mode=1777,size=64m tmpfs "$fs/tmp"
      mount -t tmpfs -o uid=10001,gid=10001,size=64m tmpfs "$fs/var/lib/clover-cd"
      exec chroot --userspec=10001:10001 "$fs" /usr/bin/env -i PATH="$path" HOME=/tmp CLOVER_CD_STATE_DIR=/var/lib/clover-cd clover-cd "$@"
    ' sh "$dir" "$PATH_IN_IMAGE" "$@"
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
for name in clover-cd clovisor clover-cd-jmeter; do
  ref=$REGISTRY/$name:$VERSION
  podman image exists "$ref" || continue
  f=$OUT/$name-$VERSION.oci.tar
  printf '  %-44s %10s   %s %s\n' "$ref" "$(podman image inspect --format '{{.Size}}' "$ref" | numfmt --to=iec)" "$(du -h "$f" | cut -f1)" "${f#"$ROOT"/}" >&2
done
