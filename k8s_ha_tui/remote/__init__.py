"""Talking to a node: SSH (host keys always checked), the probes run there and the readers of
their answers (keepalived dumps, the apiserver probe, files, the lock and audit records)."""
