"""The ``dtrack-worker`` command line: one module per command, assembled in ``main``."""
