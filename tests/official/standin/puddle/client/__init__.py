"""Stand-in ``puddle.client``: our client behind exactly the documented names (tests only)."""

import sys

from puddle.client import models  # noqa: F401  # the documented submodule, as an attribute
from tests.official.standin_build import populate

populate(sys.modules[__name__], "client")
