"""WSGI entry point: ``gunicorn -c python:ptdeploy.serving.gunicorn_conf ptdeploy.serving.wsgi:app``.

Without preload_app each gunicorn worker imports this module after the fork, so the runtime and the
model are created inside the worker (a runtime's thread pools do not survive a fork).
"""

from ptdeploy.serving.app import create_app

app = create_app()
