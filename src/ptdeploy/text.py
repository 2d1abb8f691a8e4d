"""Text from other programs, made fit to print or store: no terminal colour codes."""

import re

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def strip_colours(text: str) -> str:
    """``text`` without the ANSI colour codes that IPython tracebacks and CMake's output carry."""
    return ANSI_COLOUR.sub("", text)
