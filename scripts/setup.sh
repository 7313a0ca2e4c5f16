#!/usr/bin/env bash
# Installs what the tests and the demo need, only when it is missing; quiet and idempotent when all is there.
# System packages: JMeter (load), Redis (job state, visibility store), Prometheus (metric evidence),
# clang/bpftool/libbpf (clovisor), iproute2 (network namespaces), groovy (runs the Jenkins shared library in
# its test), chromium (browser tests of the HTML reports and the dashboard, driven by playwright-core; never a
# downloaded browser). Services are NOT started here: test fixtures start their own instances on free
# loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(jmeter redis-server prometheus clang llvm bpftool libbpf-dev iproute2 groovy chromium)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  if $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "setup: installed ${missing[*]}" >&2
  else
    echo "setup: could not install ${missing[*]} (need root or passwordless sudo); tests that need them will fail" >&2
  fi
fi

# kubectl renders deploy/ with its built-in kustomize (test/deploy-manifests.test.ts): any kubectl >= 1.20 on
# PATH serves; without one, Debian's kubernetes-client (kubectl 1.20).
if ! command -v kubectl >/dev/null; then
  echo "setup: installing kubernetes-client (kubectl)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubernetes-client >/dev/null ||
    echo "setup: could not install kubernetes-client; the deploy/ render test will fail" >&2
fi

# npm dependencies: only when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi

# Post-install steps of modules (each idempotent and quiet when done).
for step in scripts/setup.d/*.sh; do
  [ -e "$step" ] && bash "$step"
done
exit 0
