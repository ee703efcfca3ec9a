"""Failover drills on the real cluster, scored by what the clients saw (`k8s-ha-tui drill`)."""
