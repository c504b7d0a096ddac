"""nftune's own places, each spelled once: its configuration, the state it keeps (beside
artifacts.FILES, the files it generates), and the kernel's keys it names itself."""

from __future__ import annotations

CONFIG = "/etc/nftune/nftune.conf"
CONFIG_D = "/etc/nftune/nftune.conf.d"

# State: this boot's under /run (the units' RuntimeDirectory, root:adm 2750), and what
# nftune wrote, across boots, under /var/lib.
RUN_DIR = "/run/nftune"
REPORT = f"{RUN_DIR}/report.json"  # the last verify (report.py)
REPAIRS = f"{RUN_DIR}/repairs.json"  # sysctls put back this boot (repair.py)
SIZING = f"{RUN_DIR}/conntrack.json"  # the table nftune-conntrack.service sized (conntrack/)
BOOT_CHECKS = f"{RUN_DIR}/boot-checks.json"  # the boot checks' results (cache.py)
STATE_DIR = "/var/lib/nftune"
WRITTEN = f"{STATE_DIR}/state.json"  # every file nftune wrote (fsio.py)

# The kernel's, as /proc/sys paths.
BOOT_ID = "kernel/random/boot_id"
BE_LIBERAL = "net/netfilter/nf_conntrack_tcp_be_liberal"
CONNTRACK_MAX = "net/netfilter/nf_conntrack_max"
CONNTRACK_BUCKETS = "net/netfilter/nf_conntrack_buckets"
