"""Stand-in for H2O's ``puddle`` distribution, for the tests only (see ``tests/official/standin_build.py``)."""
