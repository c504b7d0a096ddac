"""nftune: load nf_conntrack before systemd-sysctl runs, and prove it."""

__version__ = "0.1.0"
