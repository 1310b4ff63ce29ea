"""Engine benchmark script: ``python bench/engine.py [--nodes 1000 --procs 500]``.

Same as ``phoenix bench --json``; the implementation lives in ``core.engine.benchmark``
so the installed CLI can run it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.engine.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
