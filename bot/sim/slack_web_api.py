"""The Web API methods the emulator implements, each checking its arguments as Slack does.

A method takes the merged request arguments and returns the answer body (``ok: true``) or
raises ``ApiError`` with the error name Slack would answer. Authentication, fault injection
and recording happen around these, in ``bot.sim.slack``.
"""

from __future__ import annotations

import itertools
import json
import mimetypes
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sim.slack_checks import (
    MAX_MESSAGE_TEXT,
    MAX_VIEW_BLOCKS,
    check_message_content,
    parse_json_list,
    parse_json_object,
    truthy,
    validate_blocks,
)
from bot.sim.slack_models import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    Message,
    UploadedFile,
)
from bot.sim.slack_views import MAX_MODAL_STACK, Modals, check_modal, initial_values
from bot.sim.slack_workspace import (
    Workspace,
    default_channel_name,
    dm_id_for,
    is_conversation_id,
    is_user_id,
)

TRIGGER_ID_LIFETIME_S = 3.0
PUBLISHES_PER_MINUTE = 100  # views.publish is Tier 4 (100+ a minute)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ApiError(Exception):
    """A Web API error answer: ``{"ok": false, "error": error}`` plus optional detail lines."""

    def __init__(self, error: str, detail: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.detail = detail or []


@dataclass
class PendingUpload:
    """A file between ``files.getUploadURLExternal`` and ``files.completeUploadExternal``."""

    file_id: str
    token: str
    filename: str
    length: int
    content: bytes | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None


@dataclass
class OpenedView:
    """A modal opened with ``views.open``."""

    view_id: str
    trigger_id: str
    view: dict[str, Any]
    at: float


@dataclass
class WebApiState:
    """State the Web API methods share with the emulator (files, uploads, views, triggers)."""

    files: list[UploadedFile] = field(default_factory=list)
    uploads_by_id: dict[str, PendingUpload] = field(default_factory=dict)
    uploads_by_token: dict[str, PendingUpload] = field(default_factory=dict)
    opened_views: list[OpenedView] = field(default_factory=list)
    trigger_ids: dict[str, float] = field(default_factory=dict)  # trigger_id -> issued at
    trigger_users: dict[str, str] = field(default_factory=dict)  # trigger_id -> user id
    modals: Modals = field(default_factory=Modals)
    publishes: list[float] = field(default_factory=list)  # views.publish times (rate limit)

    def clear(self) -> None:
        """Forget every file, upload, view and trigger id."""
        self.files.clear()
        self.uploads_by_id.clear()
        self.uploads_by_token.clear()
        self.opened_views.clear()
        self.trigger_ids.clear()
        self.trigger_users.clear()
        self.modals.clear()
        self.publishes.clear()


class WebApi:
    """The implemented Web API methods, looked up by name with ``handler(name)``."""

    def __init__(
        self,
        workspace: Workspace,
        state: WebApiState,
        *,
        clock: Callable[[], float],
        base_url: Callable[[], str],
    ) -> None:
        self._workspace = workspace
        self._state = state
        self._clock = clock
        self._base_url = base_url
        self._ids = itertools.count(1)
        self._handlers: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "conversations.info": self.conversations_info,
            "conversations.open": self.conversations_open,
            "usergroups.users.list": self.usergroups_users_list,
            "views.publish": self.views_publish,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
        }

    def handler(self, method: str) -> Handler | None:
        """The implementation of ``method``, or None (Slack answers ``unknown_method``)."""
        return self._handlers.get(method)

    def new_id(self, prefix: str) -> str:
        """A Slack-looking id such as ``F0000000001`` (never reused by this emulator)."""
        return f"{prefix}{next(self._ids):010d}"

    # -- auth, conversations, groups -------------------------------------------------------

    async def auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        """Who the token belongs to: the emulator's bot user."""
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Emulator",
            "user": "starpod",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "app_name": "starpod",
            "is_enterprise_install": False,
        }

    async def conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """A channel's id and name."""
        channel = self._channel(args.get("channel"))
        is_im = is_user_id(channel) or channel in self._workspace.dms
        dm_user = self._workspace.dms.get(channel)
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": None if is_im else self._workspace.channels[channel],
                **({"user": dm_user} if dm_user is not None else {}),
                "is_channel": not is_im,
                "is_im": is_im,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
                "created": 0,
            },
        }

    async def conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open (or find) the DM with one user: ``{"channel": {"id": "D…"}}``.

        Group DMs (several ``users``) are not emulated and answer ``invalid_arguments``.
        """
        users = args.get("users")
        if not isinstance(users, str) or not users.strip():
            if args.get("channel"):
                dm = self._channel(args.get("channel"))
                return {
                    "ok": True,
                    "no_op": True,
                    "already_open": True,
                    "channel": {"id": dm},
                }
            raise ApiError("users_list_not_supplied")
        wanted = [u.strip() for u in users.split(",") if u.strip()]
        if len(wanted) != 1:
            raise ApiError("invalid_arguments", ["the emulator opens 1:1 DMs only"])
        [user] = wanted
        if not is_user_id(user):
            raise ApiError("user_not_found")
        dm_id = dm_id_for(user)
        already_open = dm_id in self._workspace.dms
        self._workspace.dms[dm_id] = user
        channel: dict[str, Any] = {"id": dm_id}
        if truthy(args.get("return_im")):
            channel.update({"is_im": True, "user": user, "created": 0, "is_open": True})
        return {"ok": True, "no_op": already_open, "already_open": already_open, "channel": channel}

    async def usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """The members of a user group (``no_such_subteam`` for an unknown id)."""
        group = args.get("usergroup")
        if not group or group not in self._workspace.usergroups:
            raise ApiError("no_such_subteam")
        return {"ok": True, "users": list(self._workspace.usergroups[group])}

    # -- chat ------------------------------------------------------------------------------

    async def chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        """Post a message (a reply with ``thread_ts``)."""
        channel = self._channel(args.get("channel"))
        self._check_content(args)
        thread_ts = args.get("thread_ts") or None
        if thread_ts and self._workspace.thread_parent(channel, thread_ts) is None:
            # Stricter than Slack on purpose: a reply to a message that does not exist is a bug.
            raise ApiError("thread_not_found", [f"no message {thread_ts} in {channel}"])
        blocks, _ = parse_json_list(args.get("blocks"))
        attachments, _ = parse_json_list(args.get("attachments"))
        message = self._workspace.post(
            channel,
            text=args.get("text") or "",
            blocks=blocks,
            thread_ts=thread_ts,
            attachments=attachments or [],
            reply_broadcast=truthy(args.get("reply_broadcast")),
            metadata=parse_json_object(args.get("metadata")),
        )
        return {"ok": True, "channel": channel, "ts": message.ts, "message": message.to_api()}

    async def chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        """Post a message only ``user`` sees."""
        channel = self._channel(args.get("channel"))
        user = args.get("user")
        if not isinstance(user, str) or not is_user_id(user):
            raise ApiError("user_not_found")
        self._check_content(args)
        blocks, _ = parse_json_list(args.get("blocks"))
        message = self._workspace.post_ephemeral(
            channel,
            user,
            text=args.get("text") or "",
            blocks=blocks,
            thread_ts=args.get("thread_ts") or None,
        )
        return {"ok": True, "message_ts": message.ts}

    async def chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Edit a message; the old version goes to ``edits``. Left-out blocks are kept."""
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("ts"))
        self._check_content(args)
        blocks = (parse_json_list(args.get("blocks"))[0] or []) if "blocks" in args else None
        text = args.get("text") if "text" in args else None
        self._workspace.replace(message, text=text, blocks=blocks)
        return {
            "ok": True,
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    async def chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        """Delete a message (ephemerals cannot be deleted this way, as on Slack)."""
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("ts"))
        self._workspace.delete(message)
        return {"ok": True, "channel": channel, "ts": message.ts}

    async def chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        """A link to a message."""
        channel = self._channel(args.get("channel"))
        message = self._message(channel, args.get("message_ts"))
        link = f"{self._base_url()}/archives/{channel}/p{message.ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": link}

    # -- views -----------------------------------------------------------------------------

    async def views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        """Publish a user's App Home view (``type: home``, at most 100 blocks)."""
        user_id = args.get("user_id")
        if not isinstance(user_id, str) or not is_user_id(user_id):
            raise ApiError("user_not_found")
        now = self._clock()
        recent = [t for t in self._state.publishes if now - t < 60.0]
        if len(recent) >= PUBLISHES_PER_MINUTE:
            # Tier 4: Slack answers HTTP 429; here the call fails and shows in violations().
            raise ApiError("ratelimited", [f"over {PUBLISHES_PER_MINUTE} views.publish a minute"])
        self._state.publishes[:] = [*recent, now]
        view = self._view(args.get("view"), expected_type="home")
        view_id = self.new_id("V")
        stored = {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID}
        self._workspace.home_views[user_id] = stored
        self._workspace.touch()
        return {"ok": True, "view": stored}

    async def views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        """Open a modal; the trigger_id must come from a payload less than 3 s old."""
        trigger_id = args.get("trigger_id")
        if not isinstance(trigger_id, str) or trigger_id not in self._state.trigger_ids:
            raise ApiError("invalid_trigger_id")
        issued = self._state.trigger_ids[trigger_id]
        if self._clock() - issued > TRIGGER_ID_LIFETIME_S:
            raise ApiError("expired_trigger_id")
        view = self._view(args.get("view"), expected_type="modal")
        view_id = self.new_id("V")
        stored = {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID}
        self._state.opened_views.append(OpenedView(view_id, trigger_id, stored, self._clock()))
        user_id = self._state.trigger_users.get(trigger_id)
        if user_id is not None:
            modal = self._state.modals.open(user_id, view_id, view)
            initial_values(modal)
        self._workspace.touch()
        return {"ok": True, "view": stored}

    async def views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        """Replace an open modal's view (by ``view_id``; ``hash`` must match when given)."""
        view_id = args.get("view_id")
        modal = self._state.modals.by_id.get(view_id) if isinstance(view_id, str) else None
        if modal is None:
            raise ApiError("not_found")
        expected = args.get("hash")
        if expected and expected != modal.hash:
            raise ApiError("hash_conflict")
        view = self._view(args.get("view"), expected_type="modal")
        self._state.modals.update(modal.view_id, view)
        initial_values(modal)
        self._workspace.touch()
        stored = {**view, "id": modal.view_id, "team_id": TEAM_ID, "app_id": APP_ID}
        return {"ok": True, "view": {**stored, "hash": modal.hash}}

    async def views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        """Stack a modal on the user's open ones (at most 3), with a fresh trigger_id."""
        trigger_id = args.get("trigger_id")
        if not isinstance(trigger_id, str) or trigger_id not in self._state.trigger_ids:
            raise ApiError("invalid_trigger_id")
        if self._clock() - self._state.trigger_ids[trigger_id] > TRIGGER_ID_LIFETIME_S:
            raise ApiError("expired_trigger_id")
        user_id = self._state.trigger_users.get(trigger_id)
        if user_id is None or self._state.modals.depth(user_id) == 0:
            raise ApiError("not_found")
        if self._state.modals.depth(user_id) >= MAX_MODAL_STACK:
            raise ApiError("push_limit_reached")
        view = self._view(args.get("view"), expected_type="modal")
        view_id = self.new_id("V")
        modal = self._state.modals.push(user_id, view_id, view)
        initial_values(modal)
        self._workspace.touch()
        return {"ok": True, "view": {**view, "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID}}

    # -- files -----------------------------------------------------------------------------

    async def files_get_upload_url_external(self, args: dict[str, Any]) -> dict[str, Any]:
        """Reserve a file id and an upload URL on the emulator."""
        filename = args.get("filename")
        try:
            length = int(args.get("length", ""))
        except (TypeError, ValueError):
            length = -1
        if not isinstance(filename, str) or not filename or length < 0:
            raise ApiError("invalid_arguments", ["filename and length are required"])
        upload = PendingUpload(
            file_id=self.new_id("F"),
            token=secrets.token_urlsafe(12),
            filename=filename,
            length=length,
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
        )
        self._state.uploads_by_id[upload.file_id] = upload
        self._state.uploads_by_token[upload.token] = upload
        return {
            "ok": True,
            "upload_url": f"{self._base_url()}/upload/v1/{upload.token}",
            "file_id": upload.file_id,
        }

    async def files_complete_upload_external(self, args: dict[str, Any]) -> dict[str, Any]:
        """Finish uploads and share them in a channel (or thread) as one message."""
        items, well_formed = parse_json_list(args.get("files"))
        if not well_formed or not items:
            raise ApiError("invalid_arguments", ["files must be a non-empty JSON array"])
        channel = self._share_target(args)
        thread_ts = args.get("thread_ts") or None
        if thread_ts and (
            channel is None or self._workspace.thread_parent(channel, thread_ts) is None
        ):
            raise ApiError("thread_not_found", [f"no message {thread_ts} to reply to"])
        comment = args.get("initial_comment") or None
        if comment is not None and len(comment) > MAX_MESSAGE_TEXT:
            raise ApiError("msg_too_long")
        uploads = [self._uploaded(item) for item in items]
        now = self._clock()
        completed = []
        for upload, item in zip(uploads, items, strict=True):
            title = item.get("title") or upload.filename
            completed.append(
                UploadedFile(
                    file_id=upload.file_id,
                    filename=upload.filename,
                    title=title,
                    content=upload.content or b"",
                    channel_id=channel,
                    thread_ts=thread_ts,
                    initial_comment=comment,
                    at=now,
                )
            )
            del self._state.uploads_by_id[upload.file_id]
            self._state.uploads_by_token.pop(upload.token, None)
        file_dicts = [self._file_info(f, channel) for f in completed]
        message: Message | None = None
        if channel is not None:
            message = self._workspace.post(
                channel,
                text=comment or "",
                thread_ts=thread_ts,
                files=file_dicts,
                source="file_share",
            )
            for info in file_dicts:
                info["shares"] = {"public": {channel: [self._share(channel, message)]}}
        self._state.files.extend(completed)
        self._workspace.touch()
        return {"ok": True, "files": file_dicts}

    # -- helpers ---------------------------------------------------------------------------

    def _channel(self, value: Any) -> str:
        channel = self._workspace.resolve_channel(value) if isinstance(value, str) else None
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _message(self, channel: str, ts: Any) -> Message:
        message = self._workspace.find(channel, ts) if isinstance(ts, str) else None
        if message is None:
            raise ApiError("message_not_found")
        return message

    def _check_content(self, args: dict[str, Any]) -> None:
        check = check_message_content(
            text=args.get("text"), blocks=args.get("blocks"), attachments=args.get("attachments")
        )
        if not check.ok:
            raise ApiError(check.error or "invalid_arguments", check.detail)

    def check_view(self, value: Any, *, expected_type: str) -> dict[str, Any]:
        """The view if Slack would take it; otherwise ``ApiError`` with the problems."""
        return self._view(value, expected_type=expected_type)

    def _view(self, value: Any, *, expected_type: str) -> dict[str, Any]:
        view = parse_json_object(value)
        if view is None:
            raise ApiError("invalid_arguments", ["view must be a JSON object"])
        if view.get("type") != expected_type:
            raise ApiError("invalid_arguments", [f"view type must be {expected_type}"])
        blocks = view.get("blocks")
        if not isinstance(blocks, list):
            raise ApiError("invalid_arguments", ["view.blocks must be an array"])
        problems = validate_blocks(blocks, max_blocks=MAX_VIEW_BLOCKS, pointer="/view/blocks")
        if expected_type == "modal":
            problems += check_modal(view)
        if problems:
            # Slack reports view problems as invalid_arguments with the same detail lines.
            raise ApiError("invalid_arguments", problems)
        return view

    def _share_target(self, args: dict[str, Any]) -> str | None:
        channel_id = args.get("channel_id")
        channels = args.get("channels")
        # Slack takes conversation ids only here: a user id (U…) must become a DM id through
        # conversations.open first.
        checked = [("channel_id", channel_id)] if channel_id else []
        if isinstance(channels, str) and channels:
            checked += [("channels", c) for c in channels.split(",")]
        for name, value in checked:
            if not isinstance(value, str) or not is_conversation_id(value):
                raise ApiError(
                    "invalid_arguments",
                    [
                        "input must match regex pattern: ^[CGDZ][A-Z0-9]{8,}$ "
                        f"[json-pointer:/{name}]"
                    ],
                )
        if not channel_id and isinstance(channels, str) and channels:
            channel_id = channels.split(",")[0]
        return self._channel(channel_id) if channel_id else None

    def _uploaded(self, item: Any) -> PendingUpload:
        file_id = item.get("id") if isinstance(item, dict) else None
        upload = self._state.uploads_by_id.get(file_id) if isinstance(file_id, str) else None
        if upload is None or upload.content is None:
            raise ApiError("file_not_found", [f"file {file_id} was not uploaded"])
        return upload

    def _file_info(self, uploaded: UploadedFile, channel: str | None) -> dict[str, Any]:
        mimetype = mimetypes.guess_type(uploaded.filename)[0] or "text/plain"
        url = f"{self._base_url()}/files/{uploaded.file_id}/{uploaded.filename}"
        return {
            "id": uploaded.file_id,
            "created": int(uploaded.at),
            "timestamp": int(uploaded.at),
            "name": uploaded.filename,
            "title": uploaded.title,
            "mimetype": mimetype,
            "filetype": uploaded.filename.rsplit(".", 1)[-1]
            if "." in uploaded.filename
            else "text",
            "user": BOT_USER_ID,
            "user_team": TEAM_ID,
            "size": len(uploaded.content),
            "is_external": False,
            "is_public": channel is not None,
            "url_private": url,
            "url_private_download": url,
            "permalink": url,
            "channels": [channel] if channel else [],
            "shares": {},
        }

    def _share(self, channel: str, message: Message) -> dict[str, Any]:
        share: dict[str, Any] = {
            "ts": message.ts,
            "channel_name": self._workspace.channels.get(channel, default_channel_name(channel)),
            "team_id": TEAM_ID,
            "share_user_id": BOT_USER_ID,
            "source": "UNKNOWN",
            "is_silent_share": False,
        }
        if message.thread_ts is not None:
            share["thread_ts"] = message.thread_ts
        return share


def decode_json_body(raw: bytes) -> dict[str, Any]:
    """A JSON request body as a dict (``invalid_json`` when it is not a JSON object)."""
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise ApiError("invalid_json") from exc
    if not isinstance(body, dict):
        raise ApiError("invalid_json")
    return body
