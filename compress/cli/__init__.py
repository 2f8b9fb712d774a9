"""The ``compress`` command: flags → recipe → ``compress.pipeline.run``. The entry point is ``compress.cli.main:main``."""
