"""Stand-in ``puddle.client.models``: the documented models over ours (tests only)."""

import sys

from tests.official.standin_build import populate

populate(sys.modules[__name__], "models")
