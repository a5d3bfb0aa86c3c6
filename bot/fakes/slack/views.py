"""Modals in the Slack stand-in: views.open (with Slack's single-use, 3-second trigger_ids)
and views.update, validated like Slack (``invalid_arguments``), the stack a view_submission
ack can update, push or clear, and the records tests read (:meth:`ModalViews.views`)."""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from bot.fakes.slack.blockkit import fill_ids, validate_view
from bot.fakes.slack.records import APP_ID, BOT_ID, MAX_VIEW_STACK, ModalView, ViewSubmission
from bot.fakes.slack.state import SlackState, Trigger


class ModalViews(SlackState):
    """The modal part of :class:`~bot.fakes.slack.api.SlackWebAPI`."""

    # -- records ---------------------------------------------------------------------------
    def views(self, user_id: str | None = None, *, include_closed: bool = False) -> list[ModalView]:
        """Modals, oldest first: the open ones (all with ``include_closed``), optionally one
        user's. Each is a copy; ``.view`` is the view as Slack returned it."""
        with self._lock:
            return [
                copy.deepcopy(v)
                for v in self._views.values()
                if (include_closed or not v.closed) and (user_id is None or v.user_id == user_id)
            ]

    def view(self, view_id: str) -> ModalView | None:
        """One modal by view id (or by external_id, preferring an open one), closed included."""
        with self._lock:
            found = self._find_view(view_id, None)
            return copy.deepcopy(found) if found else None

    def last_view(
        self,
        user_id: str | None = None,
        *,
        callback_id: str | None = None,
        include_closed: bool = False,
    ) -> ModalView | None:
        """The most recently opened modal matching (open ones only unless ``include_closed``)."""
        found = [
            v
            for v in self.views(user_id, include_closed=include_closed)
            if callback_id is None or v.callback_id == callback_id
        ]
        return found[-1] if found else None

    def wait_for_view(
        self,
        user_id: str | None = None,
        *,
        callback_id: str | None = None,
        exclude: Iterable[str] = (),
        timeout: float = 10.0,
    ) -> ModalView:
        """Block until an open modal matches (view ids in ``exclude`` do not), and return it.

        Bolt runs listeners after the ack, so the app may open its modal only after the click
        that asked for it has returned.
        """
        skip = set(exclude)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for v in reversed(self._views.values()):
                    if (
                        not v.closed
                        and v.id not in skip
                        and (user_id is None or v.user_id == user_id)
                        and (callback_id is None or v.callback_id == callback_id)
                    ):
                        return copy.deepcopy(v)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(c.method + ":" + (c.error or "ok") for c in self._calls)
                    raise TimeoutError(f"no matching open modal within {timeout}s; saw [{seen}]")
                self._cond.wait(remaining)

    def expire_trigger_id(self, trigger_id: str) -> None:
        """Make a trigger_id older than Slack's 3 seconds (views.open: expired_trigger_id)."""
        with self._lock:
            trigger = self._triggers.get(trigger_id)
            if trigger:
                trigger.issued = time.monotonic() - self.trigger_ttl - 1

    # -- used by SlackUser -------------------------------------------------------------------

    def new_trigger_id(self, *, user_id: str) -> str:
        """A trigger_id as Slack puts in an interaction: good for one views.open, 3 seconds."""
        n = next(self._trigger_counter)
        trigger_id = f"{1000000000 + n}.{1000000 + n}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = Trigger(user_id, time.monotonic())
        return trigger_id

    def view_submitted(self, view_id: str, submission: ViewSubmission) -> ViewSubmission:
        """Record a submission of an open modal and apply the app's ack to it as Slack does
        (see :class:`ViewSubmission`); returns the submission with its outcome filled in."""
        with self._cond:
            record = self._views.get(view_id)
            if record is not None:
                submission.outcome, submission.errors, submission.problems = self._apply_view_ack(
                    record, submission.status, submission.ack
                )
                record.submissions.append(submission)
            self._cond.notify_all()
        return copy.deepcopy(submission)

    def view_closed_by_user(self, view_id: str, *, clear: bool = False) -> None:
        """The user closed the modal (its whole stack with ``clear``)."""
        with self._cond:
            record = self._views.get(view_id)
            if record is not None:
                if clear:
                    self._close_stack(record.root_view_id, "user")
                else:
                    self._close_view(record, "user")
            self._cond.notify_all()

    # -- modals (called with the lock held) --------------------------------------------------

    def _find_view(self, view_id: Any, external_id: Any) -> ModalView | None:
        if view_id:
            found = self._views.get(str(view_id))
            if found is not None or external_id is not None:
                return found
            external_id = view_id
        if not external_id:
            return None
        matches = [v for v in self._views.values() if v.external_id == str(external_id)]
        open_ones = [v for v in matches if not v.closed]
        candidates = open_ones or matches
        return candidates[-1] if candidates else None

    def _external_id_taken(self, view: Mapping[str, Any], but: str | None = None) -> bool:
        external_id = view.get("external_id")
        return bool(external_id) and any(
            v.external_id == external_id and not v.closed and v.id != but
            for v in self._views.values()
        )

    def _view_payload(
        self, view_id: str, spec: Mapping[str, Any], previous: ModalView | None
    ) -> dict[str, Any]:
        """The view as Slack returns it: ids filled in, state empty, a fresh hash."""
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": "modal",
            "blocks": fill_ids(copy.deepcopy(spec.get("blocks") or [])),
            "private_metadata": spec.get("private_metadata") or "",
            "callback_id": spec.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(spec.get("title")),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": copy.deepcopy(spec.get("close")),
            "submit": copy.deepcopy(spec.get("submit")),
            "previous_view_id": previous.id if previous else None,
            "root_view_id": previous.root_view_id if previous else view_id,
            "app_id": APP_ID,
            "external_id": spec.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }

    def _new_view(
        self,
        user_id: str,
        spec: Mapping[str, Any],
        *,
        previous: ModalView | None = None,
        trigger_id: str | None = None,
    ) -> ModalView:
        view_id = f"V0{next(self._view_counter):09d}"
        record = ModalView(
            view_id, user_id, self._view_payload(view_id, spec, previous), time.time(), trigger_id
        )
        self._views[view_id] = record
        return record

    def _replace_view(self, record: ModalView, spec: Mapping[str, Any]) -> None:
        previous = self._views.get(record.view.get("previous_view_id") or "")
        payload = self._view_payload(record.id, spec, previous)
        if not spec.get("external_id"):
            payload["external_id"] = record.external_id  # updating by external_id keeps it
        payload["root_view_id"] = record.root_view_id
        record.versions.append(record.view)
        record.view = payload

    def _stack(self, root_view_id: str) -> list[ModalView]:
        return [v for v in self._views.values() if not v.closed and v.root_view_id == root_view_id]

    @staticmethod
    def _close_view(record: ModalView, how: str) -> None:
        if not record.closed:
            record.closed, record.closed_by = True, how

    def _close_stack(self, root_view_id: str, how: str) -> None:
        for v in self._stack(root_view_id):
            self._close_view(v, how)

    def _exchange_trigger(self, trigger_id: Any) -> tuple[Trigger | None, str | None]:
        """The trigger behind ``trigger_id`` if it may open a view now, else Slack's error."""
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            return None, "invalid_trigger_id"
        if trigger.used:
            return None, "exchanged_trigger_id"
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            return None, "expired_trigger_id"
        return trigger, None

    def _apply_view_ack(
        self, record: ModalView, status: int | None, ack: Any
    ) -> tuple[str, dict[str, str], list[str]]:
        """What Slack does with the app's answer to a view_submission."""
        if record.closed:
            return "failed", {}, [f"view {record.id} was already closed ({record.closed_by})"]
        if status != 200:
            return "failed", {}, [f"the app answered HTTP {status}"]
        if ack is None:
            self._close_view(record, "submission")
            return "closed", {}, []
        if not isinstance(ack, dict):
            return "failed", {}, ["the ack is neither empty nor a JSON object"]
        action = ack.get("response_action")
        if action is None:
            self._close_view(record, "submission")
            return "closed", {}, []
        if action == "clear":
            self._close_stack(record.root_view_id, "clear")
            return "cleared", {}, []
        if action == "errors":
            return self._errors_ack(record, ack.get("errors"))
        if action in ("update", "push"):
            problems = validate_view(ack.get("view"))
            if problems:
                return "failed", {}, problems
            if action == "update":
                self._replace_view(record, ack["view"])
                return "updated", {}, []
            if len(self._stack(record.root_view_id)) >= MAX_VIEW_STACK:
                return "failed", {}, ["push_limit_reached"]
            self._new_view(record.user_id, ack["view"], previous=record)
            return "pushed", {}, []
        return "failed", {}, [f"unknown response_action: {action!r}"]

    @staticmethod
    def _errors_ack(record: ModalView, errors: Any) -> tuple[str, dict[str, str], list[str]]:
        if not isinstance(errors, dict) or not errors:
            return "failed", {}, ["response_action errors needs a non-empty errors object"]
        inputs = {b.get("block_id") for b in record.blocks if b.get("type") == "input"}
        unknown = sorted(str(k) for k in errors if k not in inputs)
        if unknown:
            return "failed", {}, [f"errors name no input block of the view: {', '.join(unknown)}"]
        return "errors", {str(k): str(v) for k, v in errors.items()}, []

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return _invalid_arguments(["missing required field: trigger_id"])
        if args.get("view") is None:
            return _invalid_arguments(["missing required field: view"])
        trigger, error = self._exchange_trigger(args["trigger_id"])
        if trigger is None:
            return {"ok": False, "error": error}
        spec = args["view"]
        if problems := validate_view(spec):
            return _invalid_arguments(problems)
        if self._external_id_taken(spec):
            return {"ok": False, "error": "duplicate_external_id"}
        trigger.used = True
        for v in list(self._views.values()):  # a new modal replaces whatever the user had open
            if v.user_id == trigger.user_id:
                self._close_view(v, "replaced")
        record = self._new_view(trigger.user_id, spec, trigger_id=args["trigger_id"])
        return {
            "ok": True,
            "view": copy.deepcopy(record.view),
            "_detail": self._view_detail(record),
        }

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if view_id and external_id:
            return _invalid_arguments(["Cannot provide both `view_id` and `external_id`"])
        if not view_id and not external_id:
            return _invalid_arguments(["must provide either `view_id` or `external_id`"])
        if args.get("view") is None:
            return _invalid_arguments(["missing required field: view"])
        record = self._find_view(view_id, external_id or "")
        if record is None or record.closed:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != record.hash:
            return {"ok": False, "error": "hash_conflict"}
        spec = args["view"]
        if problems := validate_view(spec):
            return _invalid_arguments(problems)
        if self._external_id_taken(spec, but=record.id):
            return {"ok": False, "error": "duplicate_external_id"}
        self._replace_view(record, spec)
        return {
            "ok": True,
            "view": copy.deepcopy(record.view),
            "_detail": self._view_detail(record),
        }

    @staticmethod
    def _view_detail(record: ModalView) -> dict[str, Any]:
        return {"user": record.user_id, "view_id": record.id, "title": record.title}


def _invalid_arguments(problems: Iterable[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }
