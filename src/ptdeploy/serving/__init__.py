"""The image classification service that notebook 01 grows out of the Flask tutorial.

``create_app(config)`` builds the Flask app (the WSGI entry point for gunicorn is
``ptdeploy.serving.wsgi:app``, its settings ``ptdeploy.serving.gunicorn_conf``).
"""

from ptdeploy.serving.app import DEFAULTS, create_app

__all__ = ["DEFAULTS", "create_app"]
