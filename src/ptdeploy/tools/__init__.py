"""The repository's own tools: nothing here is lesson code or runs in production.

- ``notebooks``: run, refresh and check the notebooks (``make run``, ``make refresh``), with ``peakmem``;
- ``lab``: JupyterLab with the project's settings (``make lab``);
- ``assets``: regenerate ``data/`` (``make assets``);
- ``show``: a module's or file's source as notebook output; ``plotly_static``: plotly figures that render
  without JavaScript too;
- ``processes``: start a server as a child process, wait until it answers, stop it cleanly;
- ``samples``: uploads that exercise the service (unusual images, bad input, large photos);
- ``serving_bench``: the serving benchmark (``make bench-serve``), with ``litserve_app`` (the same
  classifier behind LitServe) and ``replicas`` (Ray Serve's processes and memory);
- ``tutorial_app.py.txt``: the Flask tutorial's ``app.py``, copied to disk and run with ``flask run``.
  It is kept as text, not as a module: it loads a model when imported, as the tutorial's app does.

The system programs the project needs (nginx, cmake, ...) are found or installed by
``ptdeploy.system_packages``, beside the service and the lessons, which use it too.
"""

from pathlib import Path

TUTORIAL_APP = Path(__file__).with_name("tutorial_app.py.txt")

__all__ = ["TUTORIAL_APP"]
