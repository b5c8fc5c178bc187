"""The runner side: ``python -m switchyard.runner MODULE`` serves a module's ``@algorithm``
functions over Switchyard's runner protocol (see ``lifecycle`` for its life, ``app`` for its
routes)."""
