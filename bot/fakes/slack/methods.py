"""The Web API methods the bot uses, as the Slack stand-in answers them: chat.*,
conversations.*, users.info, usergroups.users.list and auth.test (views.* are in
:mod:`bot.fakes.slack.views`). Each is called with the lock held and returns Slack's JSON."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from bot.fakes.slack.blockkit import validate_blocks
from bot.fakes.slack.records import APP_ID, BOT_ID, BOT_NAME, BOT_USER_ID, Message
from bot.fakes.slack.state import SlackState, truthy


class WebMethods(SlackState):
    """The chat, conversations and users methods of :class:`~bot.fakes.slack.api.SlackWebAPI`."""

    # -- methods (called with the lock held) -------------------------------------------------

    def _check_message_content(self, args: dict[str, Any]) -> dict[str, Any] | None:
        blocks = args.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list):
                return {"ok": False, "error": "invalid_blocks_format"}
            errors = validate_blocks(blocks)
            if errors:
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "errors": errors,
                    "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
                }
        return None

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "wsimg demo",
            "user": BOT_NAME,
            "team_id": self.team_id,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        ts = self.next_ts()
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        message = Message(
            channel,
            ts,
            args.get("text"),
            copy.deepcopy(args.get("blocks")),
            thread_ts,
            metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
        )
        self._messages[(channel, ts)] = message
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": message.as_payload(self.team_id),
            "_detail": {"channel": channel, "ts": ts, "thread_ts": thread_ts},
        }

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self._messages.get((channel or "", ts))
        if channel is None or not ts or message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        if "text" not in args and "blocks" not in args and "attachments" not in args:
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        message.edits.append({"text": message.text, "blocks": copy.deepcopy(message.blocks)})
        if "text" in args:
            message.text = args["text"]
        if "blocks" in args:  # Slack keeps the old blocks when none are sent
            message.blocks = copy.deepcopy(args["blocks"])
        if isinstance(args.get("metadata"), dict):
            message.metadata = args["metadata"]
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message.text or "",
            "message": message.as_payload(self.team_id),
            "_detail": {
                "channel": channel,
                "ts": ts,
                "thread_ts": message.thread_ts,
                # what people saw before and see now, for the transcript's changed lines
                "before": message.edits[-1],
                "after": {"text": message.text, "blocks": copy.deepcopy(message.blocks)},
            },
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        user = args.get("user")
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if problem := self._check_message_content(args):
            return problem
        ts = self.next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "ts": ts,
                "text": args.get("text"),
                "blocks": copy.deepcopy(args.get("blocks")),
                "thread_ts": args.get("thread_ts"),
            }
        )
        return {"ok": True, "message_ts": ts, "_detail": {"channel": channel, "user": user}}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        message = self._messages.get((channel or "", ts))
        if message is None or message.deleted:
            return {"ok": False, "error": "message_not_found"}
        message.deleted = True
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "_detail": {"channel": channel, "ts": ts, "thread_ts": message.thread_ts},
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if not group:
            return {"ok": False, "error": "invalid_arguments"}
        if group not in self._usergroups:
            return {"ok": False, "error": "no_such_subgroup"}
        return {"ok": True, "users": list(self._usergroups[group])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not isinstance(user_id, str) or not re.fullmatch(r"[UW][A-Z0-9]+", user_id):
            return {"ok": False, "error": "user_not_found"}
        user = self._users.get(user_id)
        if user is None:
            name = user_id.lower()
            user = {
                "id": user_id,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": False,
                "tz": "UTC",
                "profile": {"display_name": name, "real_name": name},
            }
        return {"ok": True, "user": copy.deepcopy(user)}

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """The parent and its live replies, oldest first, paged with ``cursor``/``limit``;
        message metadata only with ``include_all_metadata``."""
        channel = self._resolve_channel(args.get("channel"))
        ts = str(args.get("ts") or "")
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        parent = self._messages.get((channel, ts))
        if parent is None or parent.deleted:
            return {"ok": False, "error": "thread_not_found"}
        replies = sorted(
            (
                m
                for m in self._messages.values()
                if m.channel == channel and m.is_reply and m.thread_ts == ts and not m.deleted
            ),
            key=lambda m: m.ts,
        )
        thread = [parent, *replies]
        try:
            limit = min(max(int(args.get("limit") or 1000), 1), 1000)
            start = int(str(args.get("cursor") or "0"))
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        page = thread[start : start + limit]
        messages = []
        for message in page:
            payload = message.as_payload(self.team_id)
            if not truthy(args.get("include_all_metadata")):
                payload.pop("metadata", None)
            messages.append(payload)
        more = start + limit < len(thread)
        return {
            "ok": True,
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            return {"ok": True, "channel": {"id": args["channel"]}}
        users = args.get("users")
        if isinstance(users, list):
            users = ",".join(users)
        ids = [u.strip() for u in str(users or "").split(",") if u.strip()]
        if not ids:
            return {"ok": False, "error": "users_list_not_supplied"}
        if len(ids) == 1:
            return {"ok": True, "channel": {"id": self.dm_channel_id(ids[0])}}
        digest = hashlib.sha256(",".join(sorted(ids)).encode()).hexdigest()[:10].upper()
        return {"ok": True, "channel": {"id": f"G{digest}"}}
