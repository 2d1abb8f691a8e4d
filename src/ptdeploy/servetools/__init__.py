"""Tooling around the classifier service (``ptdeploy.serving``); none of it runs in production.

- ``process``: start a server as a child process on a free loopback port, wait for it, stop it;
- ``samples``: uploads that exercise the service (unusual images, bad input, large photos);
- ``bench``: the serving benchmark of notebook 01 (``make bench-serve``);
- ``litserve_app``: the same classifier behind LitServe, a point of comparison in the benchmark;
- ``tutorial_app.py.txt``: the Flask tutorial's ``app.py``, copied to disk and run with ``flask run``.
  It is kept as text, not as a module: it loads a model when imported, as the tutorial's app does.
"""

from pathlib import Path

TUTORIAL_APP = Path(__file__).with_name("tutorial_app.py.txt")

__all__ = ["TUTORIAL_APP"]
