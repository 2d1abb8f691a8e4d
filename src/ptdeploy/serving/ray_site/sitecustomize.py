"""Put first on the PYTHONPATH of the Ray processes that ``ray_app.start_ray()`` launches; Python imports it
at start-up (``site``), and nothing else here ships a sitecustomize.

Every Ray process imports jsonschema, and jsonschema imports the optional ``rfc3987_syntax`` whenever it is
installed (Jupyter's dependencies pull it in). That module builds four Earley parsers at import: seconds
of CPU in each of Ray's Python processes. Ray's raylet gives its agents 15 s to start, which a busy 2-core
machine or a 1-CPU Binder misses ("Timed out waiting for file .../metrics_agent_port_..."). Ray never
validates IRIs against a schema, so its processes do without that one optional format checker.
"""

import sys

sys.modules.setdefault("rfc3987_syntax", None)  # `import rfc3987_syntax` now raises ImportError
