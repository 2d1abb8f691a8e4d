"""Shared code for the deployment notebooks: paths, offline assets, the classifier loader."""

__version__ = "0.1.0"
