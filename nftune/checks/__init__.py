"""verify's checks, one module per family; each check is a function (Context) ->
list[CheckResult] that specs.SPECS names, with what it needs and its cadence:

  files     the boot files the tree holds: module names, modules-load.d, sysctl.d, udev
  ordering  the unit graph the next boot loads, and nftune's drop-in
  boot      this boot, as the service manager saw it (a bus)
  runtime   the running kernel: modules loaded, sysctl values
  conntrack the table's size: modprobe.d's hash size, and the running table
  kubeproxy a running kube-proxy: its mode, and what it writes at its next start
  rps       RPS and RFS in effect on this machine's NICs

A check runs only when what it needs is there: verify's runner decides, never the check.
What each check means is documented once, in result.CHECKS; repairs are repair.py's.
"""
