#!/usr/bin/env bash
# clovisor: compile src/clovisor/bpf/clovisor.bpf.c into ONE BPF object (build/clovisor/clovisor.bpf.o) and the
# tracepoint attach helper (build/clovisor/clovisor-tp-attach; bpftool 7.1 cannot attach tracepoints).
# Idempotent and quiet: does nothing when the outputs are newer than their sources. Skipped, with a message,
# when clang, bpftool or kernel BTF is missing (clovisor commands then exit 4 and say why; its tests skip and say why).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT_DIR=build/clovisor
SRC=src/clovisor/bpf/clovisor.bpf.c
OBJ=$OUT_DIR/clovisor.bpf.o
HSRC=src/clovisor/bpf/tp-attach.c
HELPER=$OUT_DIR/clovisor-tp-attach
RSRC=src/clovisor/bpf/event-pipe.c
READER=$OUT_DIR/clovisor-events
if ! command -v clang >/dev/null 2>&1; then
  echo "setup: clovisor skipped: clang is not installed (apt-get install clang llvm bpftool libbpf-dev)" >&2
  exit 0
fi
if ! command -v bpftool >/dev/null 2>&1 || [ ! -r /sys/kernel/btf/vmlinux ]; then
  echo "setup: clovisor skipped: bpftool or kernel BTF (/sys/kernel/btf/vmlinux) is missing" >&2
  exit 0
fi
mkdir -p "$OUT_DIR"
if [ ! -f "$OBJ" ] || [ "$SRC" -nt "$OBJ" ]; then
  # vmlinux.h from the running kernel's BTF; CO-RE relocations keep the object portable to other kernels.
  [ -s "$OUT_DIR/vmlinux.h" ] || bpftool btf dump file /sys/kernel/btf/vmlinux format c > "$OUT_DIR/vmlinux.h"
  clang -O2 -g -Wall -Wno-unused-function -target bpf -D__TARGET_ARCH_x86 \
    -I"$OUT_DIR" -I"/usr/include/$(uname -m)-linux-gnu" -c "$SRC" -o "$OBJ.tmp"
  mv "$OBJ.tmp" "$OBJ"
fi
if [ ! -x "$HELPER" ] || [ "$HSRC" -nt "$HELPER" ]; then
  clang -O2 -Wall -o "$HELPER.tmp" "$HSRC" -lbpf
  mv "$HELPER.tmp" "$HELPER"
fi
if [ ! -x "$READER" ] || [ "$RSRC" -nt "$READER" ]; then
  clang -O2 -Wall -o "$READER.tmp" "$RSRC" -lbpf
  mv "$READER.tmp" "$READER"
fi
