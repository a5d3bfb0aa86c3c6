"""Load figures for `wsimg serve`: run as scripts, they print what they measure and assert
nothing about speed. The load itself (tests/benchmarks/load.py) is shared with
tests/test_load.py, which checks only the bounds Slack and the issue set."""
