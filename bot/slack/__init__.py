"""The Slack side: Block Kit and text rendering, the notifier (every chat.postMessage,
chat.update and DM fallback), inbound checks, the installation check, per-user limits and the
HTTP server. It renders what the domain returns; the domain never imports it."""
