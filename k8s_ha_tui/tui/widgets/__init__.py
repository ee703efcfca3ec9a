"""The monitor's parts, each with its own CSS: banner, alarms, the masters table, the backends
matrix, the workers, the event log and one master's detail. Each shows a ClusterStatus it is
given; none of them polls, talks to a node or runs an action."""
