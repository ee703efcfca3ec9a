"""deploy and rollback: probe, stage, validate, back up, swap, verify, node by node; the cut-over
when masters would stop hearing each other."""
