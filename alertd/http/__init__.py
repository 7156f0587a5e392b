"""alertd over HTTP: health checks, ``/metrics``, the JSON API (``/api/v1``) and the dashboard page.

``views`` turns the daemon's objects into JSON-able dicts (for the API and the dashboard alike), ``health``
judges the cluster, ``api`` holds the handlers, ``openapi`` describes them, ``dashboard`` renders the page and
``server`` assembles and serves the application on the daemon's event loop.
"""
