"""The long-running parts: the receiver, the job consumer, the reconciler, and ``serve``."""
