"""Benchmark of planbot's Slack acks against bare Bolt; see bench/README.md."""
