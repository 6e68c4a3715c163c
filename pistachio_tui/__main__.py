from pistachio_tui.cli import main

raise SystemExit(main())
