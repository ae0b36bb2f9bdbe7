"""Reliability: duplicates, replicas, Slack outages, crashes, bad input, forgery, shutdown."""
