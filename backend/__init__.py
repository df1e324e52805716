"""clickmatte.backend: the ZeroMQ inference daemon and the command-line tools.

- ``config``: daemon options and the loopback / CURVE rule;
- ``server``: the ROUTER loop (queue, "latest click wins", error replies);
- ``engine``: the one model (``clickmatte.model`` is imported lazily);
- ``sessions``: LRU cache of images (by digest) and sessions;
- ``images``: wire buffers <-> numpy;
- ``daemon`` (``clickmatte-daemon``), ``keys`` (``clickmatte-keys``), ``cli`` (``clickmatte``),
  ``embedded`` (find a daemon or start one for a command).
"""
