"""Scheduled jobs: they call the domain and hand what changed to the notifier."""
