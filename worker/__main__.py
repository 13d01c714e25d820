from worker.commands.main import main

raise SystemExit(main())
