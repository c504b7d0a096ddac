#!/bin/sh
# The guest side of the end-to-end suite: once the boot has settled, run this boot's step
# of the scenario (/var/lib/nftune-e2e/boot-N.sh), report on the serial console between
# markers the host reads, and power off.
state=/var/lib/nftune-e2e
out=/dev/ttyS0
systemctl is-system-running --wait >/dev/null 2>&1
n=$(( $(cat "$state/boot-count" 2>/dev/null || echo 0) + 1 ))
# BEGIN reaches the host before the count moves on: a boot the host saw no BEGIN from
# left the image at the same step, so the host may boot it again.
echo "NFTUNE-E2E BEGIN boot=$n" > "$out"
echo "$n" > "$state/boot-count"
sync
{
    if [ -x "$state/boot-$n.sh" ]; then
        "$state/boot-$n.sh" 2>&1
    else
        echo "NFTUNE-E2E RESULT FAIL boot-$n-step expected=present actual=missing"
    fi
    echo "NFTUNE-E2E END boot=$n"
} > "$out"
sync
systemctl poweroff
