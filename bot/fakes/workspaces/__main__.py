"""``python -m bot.fakes.workspaces``: serve the simulator with a demo fleet until interrupted."""

from bot.fakes.workspaces.seed import main

raise SystemExit(main())
