"""The conntrack table's size ([Conntrack]), as rps/ is RPS: the sizing rule (size.py,
pure), this machine's facts and the live table (machine.py), this boot's decision
(record.py), and `nftune conntrack` (view.py). Each is imported on its own: the kube-proxy
check needs the formula alone."""
