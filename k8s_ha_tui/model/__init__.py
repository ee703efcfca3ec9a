"""The validated model: the topology and its field checks, the speed profiles, VRRP timing
and the election simulation. Pure: no I/O beyond reading and writing the topology file."""
