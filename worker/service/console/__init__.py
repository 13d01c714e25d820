"""The operators' web console (``dtrack-worker console``, and ``serve`` starts it too): health,
projects, syncs followed live, parked jobs. Server-rendered HTML; see docs/console.md."""
