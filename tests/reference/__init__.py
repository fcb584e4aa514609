"""Pure-Python reference (oracle) implementations used by the test suite."""
