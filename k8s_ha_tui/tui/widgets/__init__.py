"""The monitor's parts, each with its own CSS: banner, alarms, the masters table, the backends
matrix, the workers, the event log, one master's detail and the footer of keys. Each shows a ClusterStatus it is
given; none of them polls, talks to a node or runs an action."""
