"""WSGI entry point: ``gunicorn -c python:ptdeploy.serving.gunicorn_conf ptdeploy.serving.wsgi:app``.

Without preload_app each gunicorn worker imports this module after the fork, so torch and the
model are created inside the worker (torch's thread pools do not survive a fork).
"""

from ptdeploy.serving.app import create_app

app = create_app()
