"""One module (or folder) per page: ``show(state)`` and optionally ``controls(state)``; the page
table (:mod:`dashboard.core.pages`) names each one."""
