"""Pure code: FPF, notifications, jobs, events and settings as data; no I/O, clock or logging."""
