"""The domain: update requests and their state machine, listings, approval and four-eyes
decisions, submit and reconcile, the poller, digests, audit, policy, naming, process identity.

It imports storage and the AWS gateway, never Slack (slack_sdk, slack_bolt, Block Kit), the
handlers or boto3 (the import-linter contracts in pyproject.toml check it). It returns data;
what it has to say to Slack goes through the ``Notifier`` port (bot/domain/ports.py), which
the Slack side implements.
"""
