"""RPS and RFS: spread receive processing over CPUs, decided on the machine that booted.

A node image is built once and booted on machines with other CPU counts, NUMA layouts and
NICs, so nothing here is rendered into a file: `nftune rps apply` (nftune-rps.service, at
boot, and the udev rule, for NICs and queues that appear later) reads sysfs and writes the
masks. One module per concern: `sysfs` reads the machine, `decide` is pure, `write`
sets what differs, `view` shows it (`nftune rps show`); verify's checks are in
nftune/checks/rps.py, the mask arithmetic in nftune/cpus.py.

Why Mode=auto spreads only NICs with fewer receive queues than CPUs: with a queue per CPU
the NIC's own hashing (RSS) already spreads the load, and RPS only adds an inter-processor
interrupt per packet batch. Only physical NICs (a `device` link in sysfs) are chosen:
veths, bridges, tunnels and CNI devices never are.
"""
