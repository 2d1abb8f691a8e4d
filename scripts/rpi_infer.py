#!/usr/bin/env python3
"""Real-time classification from a camera (or a video, or the synthetic source), as on a Raspberry Pi 4.

    python scripts/rpi_infer.py --source synthetic --frames 100          # anywhere, no camera needed
    python scripts/rpi_infer.py --source camera --engine qnnpack         # on the Pi (64-bit OS)

Same as `python -m ptdeploy.realtime`; see `--help` for the options.
"""

from ptdeploy.realtime import main

if __name__ == "__main__":
    raise SystemExit(main())
