from pgbackup_tui.cli import main

raise SystemExit(main())
