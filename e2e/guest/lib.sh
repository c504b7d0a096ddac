# Helpers for scenario steps: each step script sources this file first.
# check NAME EXPECTED ACTUAL: one assertion, one line for the host.
check() {
    if [ "$2" = "$3" ]; then verdict=PASS; else verdict=FAIL; fi
    printf 'NFTUNE-E2E RESULT %s %s expected=%s actual=%s\n' "$verdict" "$1" "$2" "$3"
}
liberal() { cat /proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal 2>/dev/null || echo missing; }
# systemd-sysctl's own words, this boot, when the key did not exist yet as it ran.
couldnt_write() {
    journalctl -b -o cat SYSLOG_IDENTIFIER=systemd-sysctl |
        grep "Couldn't write .*nf_conntrack_tcp_be_liberal"
}
loaded() { if [ -d /sys/module/nf_conntrack ]; then echo loaded; else echo absent; fi; }
# say TEXT: a heading in the step's output.
say() { printf '\n## %s\n' "$*"; }
# show NAME COMMAND...: run it, print it and its output indented, and check its exit
# status is 0.
show() {
    name=$1; shift
    printf '    $ %s\n' "$*"
    "$@" > /tmp/e2e-out 2>&1; rc=$?
    sed 's/^/    | /' /tmp/e2e-out
    check "$name" 0 "$rc"
}
# field NAME FILE [KIND]: NAME=VALUE from rstlab.py's result line in FILE (for KIND).
field() { sed -n "/ kind=${3:-[^ ]*} /s/^rstlab mode=.* $1=\([^ ]*\).*/\1/p" "$2"; }
# kv NAME FILE: NAME=VALUE from a result line of the form "WHAT NAME=VALUE ...".
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2"; }
