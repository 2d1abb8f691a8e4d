#!/usr/bin/env python3
"""Real-time classification from a camera (or a video, or the synthetic source), as on a Raspberry Pi 4.

    python scripts/rpi_infer.py --source synthetic --frames 100          # anywhere, no camera needed
    python scripts/rpi_infer.py --source camera --engine qnnpack         # on the Pi (64-bit OS)
    python scripts/rpi_infer.py --runtime executorch --pte lite0-int8.pte --source camera   # today's way

Same as `python -m ptdeploy.lessons.realtime`; see `--help` for the options. It stays a file of its own
because the Pi story needs one: the tutorial runs a script on the Pi, and this is the one to copy there
(with the ptdeploy package installed beside it). Chapter 05 says what to install on the Pi for each
runtime and how to copy a `.pte` program over.
"""

from ptdeploy.lessons.realtime import main

if __name__ == "__main__":
    raise SystemExit(main())
