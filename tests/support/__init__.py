"""Test support: the store in memory, records read for assertions, waiting, CSV builders, and
the provider's APIs on loopback (`fake_tencent`: TC3 signatures and UserSigs verified).

The fake Slack and the request signing live in `fakes/`, shared with the benchmark.
"""
