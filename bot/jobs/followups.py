"""The follow-up job: one pass of the poller, then each claimed follow-up handed to the
notifier and its outcome handed back to the domain.

A follow-up taken over from a poller that died is posted only if its thread does not hold it
yet (the dead one may have posted before recording it). An AVAILABLE follow-up is followed by
the rollout plan, posted by the poller that recorded the follow-up (or found it posted).
"""

from __future__ import annotations

from bot.domain import poller
from bot.domain.context import Services
from bot.domain.poller import PollReport
from bot.domain.ports import Delivery
from bot.domain.requests import show
from bot.jobs import rollouts
from storage.models import UpdateRequest


def run(services: Services) -> PollReport:
    report = poller.poll(services)
    report.followups = post_followups(services)
    return report


def post_followups(services: Services) -> int:
    """Post every follow-up this process could claim; how many were posted."""
    posted = 0
    batches: dict[str, UpdateRequest] = {}  # one request of each batch that finished builds
    for due in poller.claim_followups(services):
        with poller.on_its_own(f"follow-up of request {due.request.short_id}"):
            if due.taken_over and services.notifier.followed_up(due.request):
                # The one that died posted the follow-up but never recorded it, so it never
                # got as far as the rollout plan either: the plan is posted here.
                if poller.followup_found(services, due):
                    rollouts.post_plan(services, due.request)
                continue
            delivery = services.notifier.follow_up(due.request)
            if due.request.batch_id is None:
                show(services, due.request)
            else:  # a batch's one message is redrawn once for all of its builds that ended
                batches[due.request.batch_id] = due.request
            done = poller.followup_done(services, due, delivery)
            posted += done
            if done and delivery is Delivery.posted:  # only the poller that recorded it
                rollouts.post_plan(services, due.request)
    for request in batches.values():
        with poller.on_its_own(f"the message of batch {request.batch_id}"):
            show(services, request)
    return posted
