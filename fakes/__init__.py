"""Stand-ins for Slack on loopback, shared by the tests and the benchmark (not shipped).

- `fakes.slack`: a fake Slack Web API and `response_url` receiver that records what it is sent.
- `fakes.signing`: request bodies and headers signed as Slack signs them.
"""
