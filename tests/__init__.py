"""Eventgate's tests.

The suite starts a few hundred Python processes (`eventgate serve`, workers, operator
commands), and each imports over a thousand modules. Where the environment says not to write
bytecode (PYTHONDONTWRITEBYTECODE, as many container images set), every one of them would
compile each module from source again: about three seconds of CPU per process on two cores.
So the suite writes the caches Python writes by default, for itself and the processes it
starts. This package is imported before any test module and before conftest.py's imports.
"""

import os
import sys

os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False
