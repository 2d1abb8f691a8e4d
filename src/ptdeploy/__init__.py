"""Code for the deployment notebooks: the classifier service (``serving``), the chapters' lesson code, and
the repository's tools (notebook runner, system packages, benchmarks). Standard library only here: the
Makefile imports ``ptdeploy.system_packages`` with the system Python, before the venv exists."""

__version__ = "0.1.0"
