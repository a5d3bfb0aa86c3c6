"""The Slack side of the fake world, shared by the tests and by ``wsimg demo``.

Three pieces, all reached over real HTTP on 127.0.0.1 so the code under test runs unchanged:

* :class:`SlackWebAPI` stands in for the Slack Web API. Point ``slack_sdk.WebClient(base_url=...)``
  (or ``SLACK_API_URL``) at :attr:`SlackWebAPI.api_url`. It answers the methods the bot uses,
  checks the bot token, enforces the Block Kit limits Slack enforces (``invalid_blocks``), can
  inject rate limits (HTTP 429 + ``Retry-After``) and other errors, serves ``response_url``
  endpoints, and records every call and the resulting channel state for assertions.
  It also plays modals: views.open (with Slack's single-use, 3-second trigger_ids) and
  views.update, validated like Slack (``invalid_arguments``), kept per user in
  :meth:`SlackWebAPI.views`; and the Home tab: views.publish, validated like Slack, one view
  per user in :meth:`SlackWebAPI.home`.
* :class:`SlackUser` plays the Slack platform toward the bot app: it sends signed slash
  commands, button clicks, modal submissions, the ``app_home_opened`` event and clicks on the
  Home tab (v0 HMAC-SHA256) to the app's events URL, exactly as Slack does, and can also send
  unsigned, wrongly signed or stale requests.
* :func:`render_transcript` / :func:`blocks_to_text` turn what the bot said into plain text for
  a terminal (the ``wsimg demo`` transcript, and readable test failure output).

By subject: ``blockkit`` (the limits Slack checks), ``records`` (what is recorded), ``state``,
``api`` (the HTTP server, records, fault injection), ``methods`` (chat, conversations, users),
``responses`` (response_url), ``views`` (modals), ``home`` (the Home tab), ``users``
(:class:`SlackUser`) and ``transcript``. Only the standard library is used, so the package
ships for the demo.
"""

from bot.fakes.slack.api import Predicate, SlackWebAPI
from bot.fakes.slack.blockkit import (
    MAX_BLOCKS_PER_MESSAGE,
    MAX_BLOCKS_PER_VIEW,
    MODAL_TEXT_MAX,
    find_buttons,
    validate_blocks,
    validate_home_view,
    validate_view,
)
from bot.fakes.slack.records import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    MAX_VIEW_STACK,
    STALE_SECONDS,
    TRIGGER_TTL_SECONDS,
    VERIFICATION_TOKEN,
    Interaction,
    Message,
    ModalView,
    RecordedCall,
    RecordedResponse,
    TimelineEntry,
    ViewSubmission,
)
from bot.fakes.slack.transcript import render_transcript
from bot.fakes.slack.users import HttpResult, SlackUser, sign_request
from bot.slack.render import blocks_to_text, mrkdwn_to_text

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "MAX_BLOCKS_PER_MESSAGE",
    "MAX_BLOCKS_PER_VIEW",
    "MAX_VIEW_STACK",
    "MODAL_TEXT_MAX",
    "STALE_SECONDS",
    "TRIGGER_TTL_SECONDS",
    "VERIFICATION_TOKEN",
    "HttpResult",
    "Interaction",
    "Message",
    "ModalView",
    "Predicate",
    "RecordedCall",
    "RecordedResponse",
    "SlackUser",
    "SlackWebAPI",
    "TimelineEntry",
    "ViewSubmission",
    "blocks_to_text",
    "find_buttons",
    "mrkdwn_to_text",
    "render_transcript",
    "sign_request",
    "validate_blocks",
    "validate_home_view",
    "validate_view",
]
