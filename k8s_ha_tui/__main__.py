import sys

from k8s_ha_tui.cli import main

sys.exit(main())
