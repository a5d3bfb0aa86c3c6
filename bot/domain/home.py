"""What a person's Home tab shows: how many images the last fleet scan saw with an update (and
when; read, never scanned for), the update requests waiting for a decision, the images being
built, the rollouts rebuilding WorkSpaces (with their progress) and the last ten finished
requests. It is shown when they open the tab and redrawn when something it shows
changes: a rollout's progress (bot/domain/waves.py ``publish``), a request asked for, decided,
built or expired (handlers/actions.py, the poll job), for everyone who opened theirs lately.

Who sees what. A request belongs to its channel, and the Home tab has no channel, so the rule
of `/wsimg status` (the channel asked in) cannot apply. Instead:

* an approver (WSIMG_APPROVERS) sees every request and every rollout, as `/wsimg status all`
  shows them to approvers only; a Home tab is seen by its owner alone;
* anyone else sees only the requests they made themselves (``requested_by``) and the
  rollouts of those, wherever they were made: never another person's request, and so never
  one from a channel they were not in when they asked.

The rule is applied to the rows read (``crud.Scope``), before anything is rendered, every time
a Home is read: someone who stops being an approver sees only their own at the next refresh.
Pause and Resume are offered to those who may click them (an approver; with four eyes not the
rollout's requester), and the click is checked again (bot/domain/rollout.py).
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from bot.domain.context import Services
from bot.domain.ports import FleetGlance, Home, HomeRollout
from bot.domain.rollout import progress
from storage import crud
from storage import fleet as fleet_store
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import (
    IN_FLIGHT,
    TERMINAL,
    Rollout,
    RolloutState,
    State,
    UpdateRequest,
    utcnow,
)

FINISHED_SHOWN = 10
IN_FLIGHT_ROLLOUTS = (RolloutState.rebuilding, RolloutState.paused)


def of(
    services: Services,
    *,
    user_id: str,
    notice: str | None = None,
    fleet: FleetGlance | None = None,
) -> Home:
    """``user_id``'s Home as it stands now: only what they may see (the module's rule).
    ``fleet``: the glance already read for everyone being redrawn (default: read it)."""
    as_of = utcnow()
    policy = services.policy
    everything = policy.can_approve(user_id)
    scope = crud.Scope() if everything else crud.Scope(requested_by=user_id)

    live: list[tuple[Rollout, UpdateRequest]] = []
    with session_scope(services.engine) as session:
        in_flight = crud.requests_in(session=session, states=IN_FLIGHT, scope=scope)
        # Newest first by when they were asked for; the in-flight ones among them are skipped,
        # so reading that many more always leaves the newest finished ones.
        recent = crud.recent_requests(
            session=session, limit=len(in_flight) + FINISHED_SHOWN, scope=scope
        )
        for rollout in store.in_states(session=session, states=IN_FLIGHT_ROLLOUTS):
            request = crud.get_request(session=session, request_id=rollout.id)
            if request is not None and (everything or request.requested_by == user_id):
                live.append((rollout, request))
        fleet = fleet or _glance(session)
    finished = [r for r in recent if r.state in TERMINAL][:FINISHED_SHOWN]
    finished.sort(key=lambda r: r.completed_at or r.updated_at, reverse=True)
    return Home(
        user_id=user_id,
        everything=everything,
        waiting=[r for r in in_flight if r.state == State.requested],
        building=[r for r in in_flight if r.state != State.requested],
        rollouts=[
            HomeRollout(
                rollout=rollout,
                request=request,
                progress=progress(services, rollout),
                may_decide=everything
                and not (policy.four_eyes and request.requested_by == user_id),
            )
            for rollout, request in live
        ],
        finished=finished,
        as_of=as_of,
        notice=notice,
        fleet=fleet,
    )


def _glance(session: Session) -> FleetGlance:
    """The fleet as the last scan saw it: read, never scanned for (a Home is drawn for up to
    VIEWERS_MAX people at each change). Everyone may see it, as anyone may `/wsimg updates`."""
    scan = fleet_store.last_scan(session=session)
    if scan is None or scan.finished_at is None:
        return FleetGlance(updates=0, regions=0, scanned_at=None)
    updates, regions = fleet_store.update_totals(session=session)
    return FleetGlance(
        updates=updates,
        regions=regions,
        scanned_at=scan.started_at,
        scanning=scan.running_by is not None,
    )


def show(
    services: Services,
    *,
    user_id: str,
    notice: str | None = None,
    fleet: FleetGlance | None = None,
) -> bool:
    """Show ``user_id`` their Home as it stands now (``notice`` first, if any); whether it is
    shown."""
    home = of(services, user_id=user_id, notice=notice, fleet=fleet)
    return services.notifier.publish_home(home)


VIEWERS_MAX = 200  # the Home tabs redrawn on a change: the most recently opened
VIEWERS_FOR = timedelta(days=7)  # someone who has not opened it since is redrawn on opening


def opened(services: Services, *, user_id: str) -> bool:
    """``user_id`` opened the Home tab: remember it (for every process) and show it."""
    with unit_of_work(services.engine) as session:
        crud.home_opened(session=session, user_id=user_id)
    return show(services, user_id=user_id)


def refresh(services: Services) -> None:
    """Something the Home tabs show changed: show it to everyone who opened theirs lately
    (recorded in the database, so a worker redraws what a serve showed), each their own."""
    with session_scope(services.engine) as session:
        viewers = crud.home_viewers(
            session=session, since=utcnow() - VIEWERS_FOR, limit=VIEWERS_MAX
        )
        fleet = _glance(session)  # the same for everyone: read once, not once a viewer
    for user_id in dict.fromkeys([*viewers, *services.notifier.home_viewers()]):
        show(services, user_id=user_id, fleet=fleet)
