"""What the running HAProxy says of itself beyond `show stat`: when it last loaded its config
(a reload starts a new worker), so a config file changed since then is a reload pending."""

from __future__ import annotations

# The newest process of HAProxy's (a worker after each reload): its start time, as epoch seconds.
HAPROXY_LOADED = ("m=$(head -n 1 /run/haproxy.pid 2>/dev/null); [ -n \"$m\" ] && { "
                  "w=$(pgrep -n -P \"$m\" 2>/dev/null || echo \"$m\"); "
                  "t=$(sed 's/.*) //' /proc/$w/stat | cut -d' ' -f20); "
                  "b=$(sed -n 's/^btime //p' /proc/stat); echo $((b + t / $(getconf CLK_TCK))); }")
