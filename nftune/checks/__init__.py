"""verify's checks, one module per family, each with `checks(ctx) -> list[CheckResult]`:

  files     the boot files the tree holds: module names, modules-load.d, sysctl.d, udev
  ordering  the unit graph the next boot loads, and nftune's drop-in
  boot      this boot, as the service manager saw it (a bus)
  runtime   the running kernel: modules loaded, sysctl values
  conntrack the table's size: modprobe.d's hash size, and the running table
  kubeproxy a running kube-proxy: its mode, and what it writes at its next start
  rps       RPS and RFS in effect on this machine's NICs
  drift     not a family of its own: puts back what runtime found changed (Repair=yes)

What each check means is documented once, in result.CHECKS.
"""

from __future__ import annotations

from ..root import Root


def not_live(root: Root) -> str:
    """Why a runtime check was not made."""
    return ("--root: not the running system" if not root.is_host
            else "systemd is not running (a chroot or an image build)")
