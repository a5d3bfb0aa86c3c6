"""Slack identifiers (action_id prefixes, block ids) in one place.

Slack wants every action_id unique within a message, so buttons carry ``<prefix>:<n>`` and the
listeners match the prefix.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Action(StrEnum):
    APPROVE = "wsimg.approve"
    PAGE = "wsimg.page"
    SNOOZE = "wsimg.snooze"
    OPEN = "wsimg.open"  # a digest's "List them": the paged listing of one region
    REFRESH = "wsimg.refresh"  # a listing's Refresh: the same command after a new scan
    # "Approve all N": ``:all`` for the whole listing, ``:group:<n>`` for one account-region.
    BULK = "wsimg.bulk"
    # On a batch's message (four-eyes): decide every request of it at once.
    BATCH_CONFIRM = "wsimg.batch.confirm"
    BATCH_REJECT = "wsimg.batch.reject"
    BATCH_CANCEL = "wsimg.batch.cancel"
    # On an approved batch's message while some of it waits for a build slot.
    BATCH_STOP = "wsimg.batch.stop"
    # On a request's announcement (four-eyes): decide the request.
    CONFIRM = "wsimg.confirm"
    REJECT = "wsimg.reject"
    CANCEL = "wsimg.cancel"
    # On a rollout's plan and progress messages.
    ROLLOUT_BUNDLES = "wsimg.rollout.bundles"
    ROLLOUT_REBUILD = "wsimg.rollout.rebuild"
    ROLLOUT_SHARE = "wsimg.rollout.share"
    ROLLOUT_RETIRE = "wsimg.rollout.retire"
    ROLLOUT_PAUSE = "wsimg.rollout.pause"
    ROLLOUT_RESUME = "wsimg.rollout.resume"
    ROLLOUT_CANCEL = "wsimg.rollout.cancel"


# The modal that asks why a request is rejected or cancelled.
CLOSE_VIEW = "wsimg.close"
REASON_BLOCK = "reason"
REASON_INPUT = "text"


def action_id(action: Action, suffix: str | int) -> str:
    return f"{action.value}:{suffix}"


def matcher(action: Action) -> re.Pattern[str]:
    # Any suffix at all (DOTALL: a forged one may hold a newline): the handler checks it.
    return re.compile(rf"^{re.escape(action.value)}(:.*)?\Z", re.DOTALL)
