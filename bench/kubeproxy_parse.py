#!/usr/bin/env python3
"""What the kube-proxy check's YAML reading costs at its worst: documents of the size cap
(kubeproxy.parse.MAX_CONFIG) built to be slow for PyYAML's Python loader (flow collections of
one-character items, !!set, block sequences, flow mappings, merge keys, brackets nested to
the cap), against the KubeProxyConfiguration kubeadm writes (about 1.7 KiB), in one run.
CPU time, medians, nftune's own parse_document() and settings().

Target (issue 24): the worst document at the cap parses in under 100 ms.
Usage: bench/kubeproxy_parse.py [--runs N] [--check]   (--check: exit 1 when missed)
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

from common import options

from nftune.errors import NftuneError
from nftune.kubeproxy.parse import MAX_CONFIG, MAX_FLOW_DEPTH, parse_document, settings

TARGET_MS = 100.0
KUBEADM = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ipvs
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForAlphaFeatures: false
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
"""


def worst_cases(n: int) -> dict[str, str]:
    """Documents of n bytes, each slow in its own way for the Python loader."""
    head = "kind: KubeProxyConfiguration\nx: "
    room = n - len(head) - 2
    deep = "[" * (MAX_FLOW_DEPTH - 1) + "1" + "]" * (MAX_FLOW_DEPTH - 1) + ","
    return {
        "flow sequence of 1-character items": head + "[" + "1," * (room // 2) + "]",
        "!!set": head + "!!set {" + "a," * (room // 2 - 4) + "}",
        "flow mapping": head + "{" + "a: 1," * (room // 5 - 1) + "}",
        "block sequence": head + "\n" + "- a\n" * (room // 4),
        "merge keys": "kind: KubeProxyConfiguration\na: &a {x: 1}\nb: {<<: ["
                      + "*a," * (room // 3 - 6) + "]}",
        "brackets at the depth cap": head + "[" + deep * (room // len(deep)) + "]",
    }


def cost(text: str, runs: int) -> float:
    """The median CPU time of one parse, in milliseconds."""
    data = text.encode()[:MAX_CONFIG]
    samples = []
    for _ in range(runs):
        t = time.process_time()
        with contextlib.suppress(NftuneError):
            settings(parse_document(data, "bench"), "bench")
        samples.append(time.process_time() - t)
    return statistics.median(samples) * 1000


def main() -> int:
    args = options(__doc__, 15).parse_args()
    base = cost(KUBEADM, args.runs)
    print(f"{'a kubeadm KubeProxyConfiguration (' + str(len(KUBEADM)) + ' B)':<48} "
          f"{base:7.2f} ms  1.00x")
    worst = 0.0
    for name, text in worst_cases(MAX_CONFIG).items():
        ms = cost(text, args.runs)
        worst = max(worst, ms)
        print(f"{name + f' ({MAX_CONFIG} B)':<48} {ms:7.2f} ms  {ms / base:5.2f}x")
    ok = worst < TARGET_MS
    print(f"target: the worst document at the cap < {TARGET_MS:g} ms: {worst:.1f} ms, "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
