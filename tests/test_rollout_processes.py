"""A rollout's rebuild waves across real processes: each WorkSpace is rebuilt at most once
though a `wsimg worker` is killed inside its RebuildWorkspaces call, on SQLite and PostgreSQL.

One `wsimg serve` (its scheduler off) answers Slack; two `wsimg worker` processes poll, as a
deployment runs them. The update is approved, followed up and its bundles pointed through
signed requests to `serve`; the rebuild click starts the waves and the Resume click resumes
them (each may run a wave itself, as in production), the workers' polls carry them on.
A wave claims its WorkSpaces together, then asks for each rebuild in turn.
RebuildWorkspaces is held after it is carried out, one call at a time: the test lets each
call go by re-holding (which lets the held call answer and gates the next one), until a
worker is inside a call in the middle of a wave; that worker is then killed with SIGKILL
(the WorkSpace is rebuilding, the worker never learns it), the call released, and a
replacement worker started.

The failing WorkSpace is picked once the steps exist (the 12th of the WorkSpaces a wave may
take, so a later wave than the first rebuilds it, after the kill or beside it), so that it
pauses the rollout whichever process won the first wave.

The bundles are pointed once across real processes too: two approvers click "Point 3 bundles"
at the same moment on a `wsimg serve` (its scheduler on, the one-process deployment) that is
killed with SIGKILL inside its first UpdateWorkspaceBundle call (carried out, its reply held);
a replacement `wsimg serve` re-checks the orphaned bundle against AWS and points the others."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.fakes.hold import Hold
from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons
from bot.fakes.slack.records import HttpResult, Message
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import make_engine
from storage.models import Event, Rollout, RolloutStep, State, StepState, UpdateRequest
from tests.conftest import APPROVER, BOT_TOKEN, PROCESSES, SIGNING_SECRET, wait_until
from tests.processes import WsimgProcess, process_env

pytestmark = PROCESSES

REGION = "us-east-1"
BATCH = 10
WORKSPACES = 25
# How long a rebuild runs in the simulator: long enough for a poll to see it REBUILDING
# (wsimg counts a rebuild as over only once it has), whichever process is busy with a wave.
REBUILD_SECONDS = 5.0
WITHIN = 40.0  # seconds to wait for what a few polls and rebuilds must do
FAILING_AT = 11  # the failing WorkSpace's place among those a wave may take (0: the first)
MID_WAVE = 3  # a worker is killed in a call with this many of its wave's calls made before
T = TypeVar("T")
OVER = frozenset({StepState.done, StepState.failed, StepState.unconfirmed, StepState.skipped})


def test_waves_rebuild_each_workspace_at_most_once_through_a_worker_killed_mid_call(
    database_url: str, tmp_path: Path
) -> None:
    with (
        WorkSpacesSimulator(pending_seconds=3600, rebuild_seconds=REBUILD_SECONDS) as sim,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        source = sim.add_image(region=REGION, name="Win-Waves")
        bundles = [
            sim.add_bundle(region=REGION, name=f"Waves-{n}", image_id=source) for n in (1, 2)
        ]
        workspaces = [
            sim.add_workspace(region=REGION, bundle_id=bundles[n % 2], user_name=f"wave{n}")
            for n in range(WORKSPACES)
        ]
        connected = workspaces[:3]
        for ws in connected:
            sim.set_connected(ws, True)

        def env(**extra: str) -> dict[str, str]:
            return process_env(
                sim,
                slack,
                database_url,
                WSIMG_REBUILD_BATCH=str(BATCH),
                WSIMG_REBUILD_IDLE_HOURS="0",
                **extra,
            )

        front = WsimgProcess("serve", env(WSIMG_SCHEDULER="off"), tmp_path / "serve.log")
        workers = [WsimgProcess("worker", env(), tmp_path / f"worker-{n}.log") for n in (1, 2)]
        processes = [front, *workers]
        engine = make_engine(database_url)
        hold: Hold | None = None
        try:
            for process in processes:
                process.start()
            for process in processes:
                process.wait_ready()
            user = SlackUser(front.events_url, SIGNING_SECRET, slack)
            in_flight = InFlight(sim, workspaces)

            # The update: approved, built, followed up with its rollout plan by a worker.
            request = _approved_and_built(user, slack, sim, engine)
            plan = _message_with(slack, request, "bundles")
            _click(user, plan, "bundles")
            wait_until(
                lambda: all(sim.bundle(b)["ImageId"] == request.new_image_id for b in bundles),
                "the bundles to point at the new image",
                timeout=WITHIN,
            )

            # Every RebuildWorkspaces is carried out, then held, until a worker's is chosen.
            hold = sim.hold("RebuildWorkspaces", after=True)
            _click(user, _message_with(slack, request, "rebuild"), "rebuild")
            broken: str | None = None
            while True:
                assert hold.wait_until_blocked(1, timeout=WITHIN), "no RebuildWorkspaces came"
                in_flight.look()
                steps = _steps(engine, request.id)
                # A wave claims its WorkSpaces at once (with its number), then asks for each.
                claims = [s for s in steps if s.state == StepState.claimed]
                assert len({(s.wave, s.claimed_by) for s in claims}) == 1, claims
                [asking] = [s for s in claims if s.target == _last_rebuild(sim)]
                if broken is None:
                    may = [s.target for s in steps if s.target not in connected]
                    broken = may[FAILING_AT]
                    sim.fail_rebuild(broken)
                holder = _process_of(asking.claimed_by, workers)
                wave = [s for s in steps if s.wave == asking.wave]
                assert len(wave) <= BATCH, f"wave {asking.wave} asks for more than {BATCH}"
                before = [s for s in wave if s.id != asking.id and s.state != StepState.claimed]
                if holder is not None and len(before) >= MID_WAVE and asking.target != broken:
                    break
                hold = sim.hold("RebuildWorkspaces", after=True)  # answers this one
            assert holder is not None
            holder.kill()  # inside RebuildWorkspaces: the WorkSpace rebuilds, unrecorded
            hold.release()
            orphan, dead_claim = asking.target, asking.claimed_by
            assert sim.workspace(orphan)["State"] == "REBUILDING"
            heir = WsimgProcess("worker", env(), tmp_path / "worker-3.log").start()
            processes.append(heir)
            heir.wait_ready()

            # The failing WorkSpace pauses the rollout once its rebuild ends in ERROR.
            paused = _until(
                lambda: _settled(engine, request.id, "paused", in_flight),
                "the rollout to pause with nothing in flight",
            )
            assert broken in (paused.paused_reason or ""), paused.paused_reason
            at_pause = {s.target: s for s in _steps(engine, request.id)}
            assert at_pause[broken].state == StepState.failed
            assert all(at_pause[ws].state == StepState.waiting for ws in connected)
            assert all(at_pause[ws].detail == "connected" for ws in connected)
            assert all(sim.rebuilds(ws) == 0 for ws in connected)

            # Resume: every WorkSpace but the connected ones is then rebuilt; those wait.
            _click(user, _message_with(slack, request, "resume"), "resume")
            waiting = _until(
                lambda: _only_connected_left(engine, request.id, connected, in_flight),
                "every WorkSpace but the connected ones to be rebuilt",
            )
            assert waiting.state == "rebuilding"
            assert all(sim.rebuilds(ws) == 0 for ws in connected)

            # They disconnect; the next wave rebuilds them and the rollout is done.
            for ws in connected:
                sim.set_connected(ws, False)
            done = _until(
                lambda: _settled(engine, request.id, "done", in_flight),
                "the rollout to be done",
            )
            final = {s.target: s for s in _steps(engine, request.id)}
            settled = _events(engine, request.id, "workspace_rebuild_settled")
        except BaseException:
            _show_logs(processes)
            raise
        finally:
            if hold is not None:
                hold.release()
            codes = {p.log.name: p.stop() for p in processes if p.proc and p.proc.poll() is None}
            engine.dispose()

    assert codes == {name: 0 for name in codes}, codes
    assert done.state == "done"
    # Every WorkSpace was asked to rebuild once, and WorkSpaces rebuilt each once.
    asked = Counter(
        c.params["RebuildWorkspaceRequests"][0]["WorkspaceId"]
        for c in sim.calls
        if c.operation == "RebuildWorkspaces"
    )
    assert asked == Counter(workspaces), asked
    assert {ws: sim.rebuilds(ws) for ws in workspaces} == dict.fromkeys(workspaces, 1)
    # No wave took more than a batch; the connected ones went in the last.
    waves = Counter(s.wave for s in final.values())
    assert None not in waves and max(waves.values()) <= BATCH, waves
    assert all(final[ws].wave == max(w for w in waves if w is not None) for ws in connected)
    assert in_flight.most <= BATCH, in_flight.most
    # The orphan was settled from what AWS showed, by another process, and never asked again.
    assert final[orphan].claimed_by == dead_claim
    [found] = [e.detail["found"] for e in settled if e.detail["target"] == orphan]
    if final[orphan].state == StepState.done:
        assert found == "REBUILDING"
    else:
        assert final[orphan].state == StepState.unconfirmed and found != "REBUILDING", found
    assert final[broken].state == StepState.failed
    others = set(workspaces) - {orphan, broken}
    assert {final[ws].state for ws in others} == {StepState.done}


SECOND_APPROVER = "U0APPROVER2"
BUNDLES = 3
ALREADY = "already started that"


def test_two_clicks_point_each_bundle_once_through_a_serve_killed_inside_its_first_call(
    database_url: str, tmp_path: Path
) -> None:
    with (
        WorkSpacesSimulator(pending_seconds=3600) as sim,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        source = sim.add_image(region=REGION, name="Win-Bundles")
        bundles = [
            sim.add_bundle(region=REGION, name=f"Pointed-{n}", image_id=source)
            for n in range(1, BUNDLES + 1)
        ]

        def env() -> dict[str, str]:  # each process its own port; serve's scheduler on
            approvers = f"{APPROVER},{SECOND_APPROVER}"
            return process_env(sim, slack, database_url, WSIMG_APPROVERS=approvers)

        front = WsimgProcess("serve", env(), tmp_path / "serve.log")
        processes = [front]
        engine = make_engine(database_url)
        hold: Hold | None = None
        try:
            front.start().wait_ready()
            user = SlackUser(front.events_url, SIGNING_SECRET, slack)
            request = _approved_and_built(user, slack, sim, engine)
            plan = _message_with(slack, request, "bundles")
            button = _button(plan, "bundles")
            assert button is not None
            assert button["text"] == f"Point {BUNDLES} bundles at the new image"

            # Every UpdateWorkspaceBundle is carried out, then its reply held.
            hold = sim.hold("UpdateWorkspaceBundle", after=True)
            clicks = _clicks_at_once(user, plan, "bundles", [APPROVER, SECOND_APPROVER])
            assert hold.wait_until_blocked(1, timeout=WITHIN), "no UpdateWorkspaceBundle came"
            [loser] = _until(
                lambda: [who for who in clicks if ALREADY in _said(slack, clicks[who])],
                "one of the two clicks to be told the other started it",
            )
            [winner] = set(clicks) - {loser}
            refusal = _said(slack, clicks[loser])
            assert not _said(slack, clicks[winner])  # inside its call: no answer yet
            front.kill()  # the first bundle is pointed; serve never learns it
            at_kill = _steps(engine, request.id, "bundle")
            hold.release()
            pointed_before = {
                c.params["BundleId"] for c in sim.calls if c.operation == "UpdateWorkspaceBundle"
            }
            heir = WsimgProcess("serve", env(), tmp_path / "serve-2.log").start()
            processes.append(heir)
            heir.wait_ready()
            final = _until(
                lambda: _all_done(engine, request.id, "bundle"),
                "the replacement's poll to finish every bundle",
            )
        except BaseException:
            _show_logs(processes)
            raise
        finally:
            if hold is not None:
                hold.release()
            codes = {p.log.name: p.stop() for p in processes if p.proc and p.proc.poll() is None}
            engine.dispose()

    assert codes == {"serve-2.log": 0}, codes
    # Every bundle points at the new image, and was asked to once.
    assert {b: sim.bundle(b)["ImageId"] for b in bundles} == dict.fromkeys(
        bundles, request.new_image_id
    )
    asked = Counter(
        c.params["BundleId"] for c in sim.calls if c.operation == "UpdateWorkspaceBundle"
    )
    assert asked == Counter(bundles), asked
    # The killed serve held the claim of every bundle it had pointed, none recorded done;
    # the replacement took each over, re-checked it against AWS, and pointed only the rest.
    assert pointed_before, "serve was killed before any bundle was pointed"
    held = {s.target for s in at_kill if _process_of(s.claimed_by, [front]) is front}
    assert pointed_before <= held, (pointed_before, at_kill)
    assert not [s for s in at_kill if s.state == StepState.done], at_kill
    assert {s.target: s.state for s in final} == dict.fromkeys(bundles, StepState.done)
    assert all(_process_of(s.claimed_by, [heir]) is heir for s in final), final
    rechecked = {s.target for s in final if s.detail == "already pointed at the new image"}
    assert rechecked == pointed_before, (rechecked, pointed_before)
    # The click that lost was told who started it: a mention of the winner, as Slack shows it.
    assert f"<@{winner}> {ALREADY}" in refusal, refusal


def _until(check: Callable[[], T | None], what: str) -> T:
    """What ``check()`` returns once it is something, within WITHIN seconds."""
    found = wait_until(check, what, timeout=WITHIN)
    assert found is not None
    return found


class InFlight:
    """The most WorkSpaces the simulator has shown REBUILDING at once, sampled on each look."""

    def __init__(self, sim: WorkSpacesSimulator, workspaces: list[str]) -> None:
        self.sim, self.workspaces, self.most = sim, workspaces, 0

    def look(self) -> None:
        now = sum(1 for ws in self.workspaces if self.sim.workspace(ws)["State"] == "REBUILDING")
        self.most = max(self.most, now)


def _approve(user: SlackUser, slack: SlackWebAPI) -> None:
    asked = user.command("updates", user_id=APPROVER)
    listing = slack.wait_for_response(asked.response_url, lambda p: bool(p.get("blocks")), 30)
    [button] = [
        b for b in find_buttons(listing["blocks"]) if b["action_id"].startswith("wsimg.approve")
    ]
    user.click_button(button, user_id=APPROVER)


def _approved_and_built(
    user: SlackUser, slack: SlackWebAPI, sim: WorkSpacesSimulator, engine: Engine
) -> UpdateRequest:
    """The update approved, built by the simulator, and AVAILABLE once a poll followed it up."""
    _approve(user, slack)
    wait_until(
        lambda: sim.count("CreateUpdatedWorkspaceImage") == 1,
        "the update to be created",
        timeout=WITHIN,
    )
    sim.complete_pending()
    return _until(lambda: _available(engine), "the update to be AVAILABLE")


def _available(engine: Engine) -> UpdateRequest | None:
    with Session(engine) as session:
        request = session.exec(select(UpdateRequest)).one_or_none()
    return request if request is not None and request.state == State.available else None


def _button(message: Message, kind: str) -> dict[str, Any] | None:
    prefix = f"wsimg.rollout.{kind}"
    return next(
        (b for b in find_buttons(message.blocks) if b["action_id"].startswith(prefix)), None
    )


def _show_logs(processes: list[WsimgProcess]) -> None:
    """On a failure, the end of each process's log (pytest shows it with the failure)."""
    for process in processes:
        print(f"--- {process.log.name}\n{process.log.read_text(errors='replace')[-6000:]}")


def _message_with(slack: SlackWebAPI, request: UpdateRequest, kind: str) -> Message:
    """The latest message in the update's thread with the rollout's ``kind`` button."""
    assert request.channel_id and request.message_ts

    def found() -> Message | None:
        thread = slack.thread(request.channel_id or "", request.message_ts or "")
        return next((m for m in reversed(thread) if _button(m, kind)), None)

    return _until(found, f"a {kind} button in the update's thread")


def _click(user: SlackUser, message: Message, kind: str, *, user_id: str = APPROVER) -> HttpResult:
    button = _button(message, kind)
    assert button is not None
    result = user.click_button(button, user_id=user_id, message=message, channel_id=message.channel)
    assert result.status == 200, result.body
    return result


def _clicks_at_once(
    user: SlackUser, message: Message, kind: str, clickers: list[str]
) -> dict[str, HttpResult]:
    """Each of ``clickers`` clicks the button at the same moment (each its own request)."""
    start = threading.Barrier(len(clickers))

    def click(who: str) -> HttpResult:
        start.wait(timeout=WITHIN)
        return _click(user, message, kind, user_id=who)

    with ThreadPoolExecutor(len(clickers)) as pool:
        sent = {who: pool.submit(click, who) for who in clickers}
    return {who: future.result() for who, future in sent.items()}


def _said(slack: SlackWebAPI, click: HttpResult) -> str:
    """The mrkdwn texts wsimg sent to the click's response_url so far, one per line."""
    assert click.response_url
    return "\n".join(
        str(block.get("text", {}).get("text", ""))
        for answer in slack.responses_for(click.response_url)
        for block in answer.get("blocks") or [{"text": {"text": answer.get("text", "")}}]
    )


def _steps(engine: Engine, rollout_id: str, kind: str = "workspace") -> list[RolloutStep]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(RolloutStep)
                .where(RolloutStep.rollout_id == rollout_id, RolloutStep.kind == kind)
                .order_by(col(RolloutStep.id))
            )
        )


def _all_done(engine: Engine, rollout_id: str, kind: str) -> list[RolloutStep] | None:
    steps = _steps(engine, rollout_id, kind)
    return steps if steps and all(s.state == StepState.done for s in steps) else None


def _rollout(engine: Engine, rollout_id: str) -> Rollout:
    with Session(engine) as session:
        rollout = session.get(Rollout, rollout_id)
    assert rollout is not None
    return rollout


def _settled(engine: Engine, rollout_id: str, state: str, in_flight: InFlight) -> Rollout | None:
    """The rollout once it is in ``state`` with no WorkSpace claimed or rebuilding."""
    in_flight.look()
    rollout = _rollout(engine, rollout_id)
    busy = [
        s
        for s in _steps(engine, rollout_id)
        if s.state in (StepState.claimed, StepState.rebuilding)
    ]
    return rollout if rollout.state == state and not busy else None


def _only_connected_left(
    engine: Engine, rollout_id: str, connected: list[str], in_flight: InFlight
) -> Rollout | None:
    in_flight.look()
    rollout = _rollout(engine, rollout_id)
    steps = _steps(engine, rollout_id)
    left = {s.target for s in steps if s.state not in OVER}
    waiting = {s.target for s in steps if s.state == StepState.waiting}
    quiet = rollout.state == "rebuilding" and left == waiting == set(connected)
    return rollout if quiet else None


def _events(engine: Engine, rollout_id: str, kind: str) -> list[Event]:
    with Session(engine) as session:
        return list(
            session.exec(select(Event).where(Event.request_id == rollout_id, Event.kind == kind))
        )


def _last_rebuild(sim: WorkSpacesSimulator) -> str:
    [*_, last] = [c for c in sim.calls if c.operation == "RebuildWorkspaces"]
    return str(last.params["RebuildWorkspaceRequests"][0]["WorkspaceId"])


def _process_of(claimed_by: str | None, processes: list[WsimgProcess]) -> WsimgProcess | None:
    """The process whose id (``host:pid:start:token``) made the claim, if one of ``processes``."""
    pid = int((claimed_by or "::").split(":")[1] or 0)
    return next((p for p in processes if p.proc is not None and p.proc.pid == pid), None)
