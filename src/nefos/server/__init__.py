"""The composition root: builds the app and the engines, and wires the services into them.

Nothing imports this package but the ``nefos`` command (and tests): the services and
``nefos.core`` below it never reach back up (``src/nefos/layers.toml``).
"""
