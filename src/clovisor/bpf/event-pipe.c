// SPDX-License-Identifier: GPL-2.0
/*
 * clovisor-events: read a pinned BPF perf event array and print each sample as one JSON line,
 *
 *   clovisor-events <pinned-perf-array> [<pages-per-cpu>]
 *   {"cpu":0,"data":[1,2,...]}        one sample
 *   {"lost":{"cpu":0,"count":N}}      samples the kernel dropped because the ring was full
 *
 * Why not `bpftool map event_pipe`: it only reads rings that epoll reports ready, and the wakeup of a ring is
 * deferred (irq_work). On an idle CPU of a VM that wakeup can wait until the next event on that CPU, so the last
 * closed session of a burst stayed in its ring indefinitely (seen as 39 of 40 sessions). This reader polls with
 * a short timeout and then consumes every ring, ready or not. Output is flushed once per poll round.
 * Exits on SIGINT/SIGTERM, when stdout is closed, or when its parent dies (PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void on_sample(void *ctx, int cpu, void *data, __u32 size) {
  (void)ctx;
  const unsigned char *b = data;
  printf("{\"cpu\":%d,\"data\":[", cpu);
  for (__u32 i = 0; i < size; i++) printf(i ? ",%u" : "%u", b[i]);
  fputs("]}\n", stdout);
}

static void on_lost(void *ctx, int cpu, __u64 count) {
  (void)ctx;
  printf("{\"lost\":{\"cpu\":%d,\"count\":%llu}}\n", cpu, (unsigned long long)count);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <pinned-perf-event-array> [pages-per-cpu]\n", argv[0]);
    return 2;
  }
  size_t pages = argc > 2 ? strtoul(argv[2], NULL, 10) : 64;
  int fd = bpf_obj_get(argv[1]);
  if (fd < 0) {
    fprintf(stderr, "map %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  /* A tracer killed with SIGKILL must not leave its reader (and the map it holds) behind. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 0;
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, on_signal);
  struct perf_buffer *pb = perf_buffer__new(fd, pages, on_sample, on_lost, NULL, NULL);
  if (!pb) {
    fprintf(stderr, "perf buffer on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  fputs("{\"ready\":true}\n", stdout);
  fflush(stdout);
  while (!stop) {
    int n = perf_buffer__poll(pb, 50);
    if (n < 0 && n != -EINTR) break;
    perf_buffer__consume(pb); /* rings whose wakeup has not arrived (yet) */
    if (fflush(stdout) != 0 || ferror(stdout)) break;
  }
  perf_buffer__free(pb);
  return 0;
}
