"""Test support: the store in memory, records read for assertions, waiting, CSV builders.

The fake Slack and the request signing live in `fakes/`, shared with the benchmark.
"""
