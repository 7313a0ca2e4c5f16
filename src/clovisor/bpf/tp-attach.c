// SPDX-License-Identifier: GPL-2.0
/*
 * clovisor-tp-attach: attach already-loaded, pinned BPF programs to tracepoints and pin the links.
 *
 *   clovisor-tp-attach <tracefs> <pinned-prog> <category>/<event> <link-pin> [<pinned-prog> <cat>/<event> <link-pin>]...
 *
 * bpftool 7.1 (Debian 12) loads and pins programs and maps, but cannot attach tracepoints (`autoattach` came in
 * 7.2), so this one-purpose helper does only that: perf_event_open on the tracepoint, BPF_LINK_CREATE, pin.
 * Once pinned the link outlives this process; removing the pin file detaches it. Prints one JSON line per link.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>

static int tracepoint_id(const char *tracefs, const char *event) {
  char path[512], buf[32] = {0};
  snprintf(path, sizeof(path), "%s/events/%s/id", tracefs, event);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? atoi(buf) : -EINVAL;
}

int main(int argc, char **argv) {
  if (argc < 5 || (argc - 2) % 3 != 0) {
    fprintf(stderr, "usage: %s <tracefs> <pinned-prog> <category>/<event> <link-pin> [...]\n", argv[0]);
    return 2;
  }
  for (int i = 2; i + 2 < argc; i += 3) {
    const char *prog_pin = argv[i], *event = argv[i + 1], *link_pin = argv[i + 2];
    int id = tracepoint_id(argv[1], event);
    if (id < 0) {
      fprintf(stderr, "tracepoint %s: %s (is tracefs mounted at %s?)\n", event, strerror(-id), argv[1]);
      return 1;
    }
    int prog = bpf_obj_get(prog_pin);
    if (prog < 0) {
      fprintf(stderr, "program %s: %s\n", prog_pin, strerror(errno));
      return 1;
    }
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = id;
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    int pfd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0) {
      fprintf(stderr, "perf_event_open(%s): %s\n", event, strerror(errno));
      return 1;
    }
    int link = bpf_link_create(prog, pfd, BPF_PERF_EVENT, NULL);
    if (link < 0) {
      fprintf(stderr, "link %s to %s: %s\n", prog_pin, event, strerror(errno));
      return 1;
    }
    if (bpf_obj_pin(link, link_pin) < 0) {
      fprintf(stderr, "pin link %s: %s\n", link_pin, strerror(errno));
      return 1;
    }
    struct bpf_link_info info;
    __u32 len = sizeof(info);
    memset(&info, 0, sizeof(info));
    bpf_obj_get_info_by_fd(link, &info, &len);
    printf("{\"tracepoint\":\"%s\",\"link\":\"%s\",\"linkId\":%u,\"progId\":%u}\n", event, link_pin, info.id, info.prog_id);
    close(link);
    close(pfd);
    close(prog);
  }
  return 0;
}
