"""Changing a running cluster on purpose: the actions and their interlocks, the cluster lock
(guard) every change takes, and the handling of Ctrl-C and SIGTERM."""
