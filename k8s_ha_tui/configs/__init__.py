"""Configs as files: rendering them from the topology (keepalived, HAProxy, kubeadm), reading
the ones people already run the way the daemons read them, and linting both."""
