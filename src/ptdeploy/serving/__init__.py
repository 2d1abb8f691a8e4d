"""The image classification service that notebook 01 grows out of the Flask tutorial.

``create_app(config)`` builds the Flask app (the WSGI entry point for gunicorn is
``ptdeploy.serving.wsgi:app``, its settings ``ptdeploy.serving.gunicorn_conf``). Every setting and where
it is read: ``ptdeploy.serving.settings``.
"""

from ptdeploy.serving.app import create_app
from ptdeploy.serving.settings import DEFAULTS

__all__ = ["DEFAULTS", "create_app"]
