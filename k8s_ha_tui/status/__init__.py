"""The live status: the collector polls every node into immutable ClusterStatus snapshots that
every front end reads, the events between two of them, and how a fact is written in a cell."""
