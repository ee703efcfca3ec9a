"""Clusters this tool did not build: reading what a node really runs (nodeconfig), discover,
doctor, and the plan that adopts a cluster without two VIP holders."""
