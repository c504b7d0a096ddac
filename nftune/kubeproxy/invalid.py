"""What each kube-proxy mode does about segments conntrack marks INVALID, and which
mitigation is in force on a node (README, "When be_liberal matters: kube-proxy's modes").

kube-proxy's source (pkg/proxy/{iptables,nftables,ipvs}/proxier.go):
- iptables: `-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP` in the filter table,
  reached from FORWARD only. Unconditional before 1.29; from 1.29 (kubernetes PR #120412)
  only when nf_conntrack_tcp_be_liberal is 0 when NewProxier reads it, once, at its start.
  conntrack.tcpBeLiberal (1.29, PR #120354) writes 1 before the proxier is made, so it
  then skips the rule. A segment answered to the node's own address (the service
  masqueraded the client) goes through INPUT and is never dropped (kubernetes#117924).
- nftables (1.29 alpha, Linux 5.13 or later): 1.29 had `ct state invalid drop` in its
  forward chain under the same condition; from 1.30 none (PR #122663).
- ipvs (deprecated from 1.35): none in any release.

nftune never learns kube-proxy's version: that would mean reading the pod's binary or
asking a port any host-network pod could answer on. Where the version decides, the text
says what each version does.
"""

from __future__ import annotations

from ..record import Record

DROP_RULE_FROM = "1.29"  # iptables mode: the rule depends on be_liberal from this release


class Mitigation(Record):
    """What protects this node's Service traffic from INVALID segments, in one line."""

    ok: bool
    text: str
    hint: str = ""  # when not the usual one (HINT)


RESET_LATER = ("find what set nf_conntrack_tcp_be_liberal back to 0 after kube-proxy "
               "started ('nftune verify --check sysctl-value' names a change at runtime), "
               "then restart kube-proxy")


def mitigation(mode: str, liberal: str | None, boot: str | None,
               sets_liberal: bool) -> Mitigation:
    """`liberal`: nf_conntrack_tcp_be_liberal now (None: unreadable); `boot`: the sysctl.d
    line that sets 1 at boot (None: none does); `sets_liberal`: kube-proxy's own
    tcpBeLiberal writes 1 at its start."""
    if liberal == "1":
        if boot is not None:
            why = f"set at boot by {boot}, before kube-proxy starts"
        elif sets_liberal:
            why = "written by kube-proxy's tcpBeLiberal at its start"
        else:
            why = "set by neither sysctl.d nor kube-proxy's tcpBeLiberal: by hand or by " \
                  "another agent, until the next boot only"
        text = f"nf_conntrack_tcp_be_liberal is 1 ({why}): INVALID segments keep their NAT"
        if mode == "iptables":
            text += (f"; kube-proxy {DROP_RULE_FROM} and later skip their INVALID drop rule "
                     "when it was 1 at their start, older ones install it too (its version "
                     "is not known to nftune)")
        # Not from boot: IPVS and nftables modes lose it at the next boot; iptables mode's
        # kube-proxy then finds 0 and installs its rule.
        return Mitigation(ok=boot is not None or sets_liberal or mode == "iptables",
                          text=text)
    state = liberal if liberal is not None and liberal.isdigit() and len(liberal) < 4 \
        else "unreadable"
    if mode == "iptables" and (sets_liberal or boot is not None):
        # kube-proxy 1.29+ read 1 at its start (its own tcpBeLiberal, or the boot line) and
        # installed no rule; the value changed since, so nothing handles the segments.
        was = ("kube-proxy's tcpBeLiberal wrote 1 at its start" if sets_liberal else
               f"{boot} sets 1 at boot, so kube-proxy 1.29 and later found 1 at their start "
               "unless the line was lost (its version is not known to nftune)")
        return Mitigation(ok=False, hint=RESET_LATER, text=(
            f"nf_conntrack_tcp_be_liberal is {state} now, but {was}, and so installed no "
            "INVALID drop rule: nothing keeps an out-of-window segment from losing its NAT "
            "and resetting the connection"))
    if mode == "iptables":
        return Mitigation(ok=True, text=(
            f"nf_conntrack_tcp_be_liberal is {state}, so kube-proxy's INVALID drop rule is "
            "in force (every version installs it when the value is 0 at its start): it "
            "drops such segments on their way to pods (FORWARD), but one answered to the "
            "node's own address after masquerade still resets the connection "
            "(kubernetes#117924; the RST lab measures both)"))
    rule = ("kube-proxy 1.30 and later install no INVALID drop rule in nftables mode "
            "(kubernetes PR #122663; 1.29's alpha had one; its version is not known to "
            "nftune)" if mode == "nftables" else
            "kube-proxy installs no INVALID drop rule in IPVS mode")
    return Mitigation(ok=False, hint=RESET_LATER if sets_liberal else "", text=(
        f"nf_conntrack_tcp_be_liberal is {state} and {rule}: an out-of-window segment "
        "loses its NAT and the connection is reset"))


HINT = ("set net.netfilter.nf_conntrack_tcp_be_liberal=1 from boot (nftune's default "
        "[Sysctl] line; run 'nftune apply'), or conntrack.tcpBeLiberal: true in kube-proxy's "
        "configuration (1.29 and later), and restart kube-proxy")
