#!/usr/bin/env python3
"""node_exporter, scraped as Prometheus does, while nftune-verify.service replaces
nftune.prom in its textfile directory: every scrape must show nftune's series whole, and
node_textfile_scrape_error 0. One line of results.

    scrape.py SECONDS [--torn FILE]

--torn is the control that shows the scrape would see a torn file: meanwhile FILE is
rewritten in place, a line at a time, as a writer that is not atomic would.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import urllib.request

URL = "http://localhost:9100/metrics"
FAMILIES = ("nftune_check_ok", "nftune_checks", "nftune_sysctl_value", "nftune_sysctl_wanted",
            "nftune_ordering_proven", "nftune_last_run_timestamp_seconds",
            "nftune_last_run_duration_seconds", "nftune_info")


def scrape() -> str:
    with urllib.request.urlopen(URL, timeout=10) as r:
        return str(r.read().decode())


def torn(path: str, until: float) -> None:
    """Rewrite `path` in place, a line every 20 ms."""
    with open(path) as f:
        lines = f.readlines()
    while time.monotonic() < until:
        with open(path, "w") as f:
            for line in lines:
                f.write(line)
                f.flush()
                time.sleep(0.02)


def main() -> None:
    seconds = float(sys.argv[1])
    if sys.argv[2:3] == ["--torn"]:
        threading.Thread(target=torn, args=(sys.argv[3], time.monotonic() + seconds),
                         daemon=True).start()
    scrapes = errors = partial = 0
    runs: set[str] = set()
    end = time.monotonic() + seconds
    while scrapes == 0 or time.monotonic() < end:
        text = scrape()
        scrapes += 1
        m = re.search(r"^node_textfile_scrape_error (\S+)$", text, re.M)
        errors += m is None or float(m.group(1)) != 0
        partial += any(not re.search(rf"^{f}[{{ ]", text, re.M) for f in FAMILIES)
        if m := re.search(r"^nftune_last_run_timestamp_seconds (\S+)$", text, re.M):
            runs.add(m.group(1))
        time.sleep(0.05)
    print(f"scrape scrapes={scrapes} scrape_errors={errors} partial={partial} "
          f"runs_seen={len(runs)}")


if __name__ == "__main__":
    main()
