"""atwh's tests, split as src/atwh/ is.

With PYTHONDONTWRITEBYTECODE set, each of the parallel workers rewrote the asserts of every
test module, and each `python -m atwh` a test starts compiled atwh again, on every run: 3 s
of CPU a worker. Imported before tests/conftest.py, this lets the tests write their bytecode
(into the git-ignored __pycache__ folders), which the subprocesses then read.
"""

import sys

sys.dont_write_bytecode = False
