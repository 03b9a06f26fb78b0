"""The outbox worker: claims due messages, sends them to WeChat, records what happened.

Claiming
    One short transaction looks at the oldest due rows — pending, ``next_attempt_at``
    reached, lease absent or expired — at most ``WINDOW_FACTOR × OUTBOX_BATCH`` of them, in
    the order of the ``(status, next_attempt_at)`` index, so a claim costs the same whatever
    the backlog. PostgreSQL locks them with ``FOR UPDATE SKIP LOCKED``, so concurrent workers
    take disjoint rows without waiting; SQLite serialises the whole transaction with
    ``BEGIN IMMEDIATE`` (``backend.database``). Of these, a row is claimed only when no
    earlier message of the same item to the same recipient is unfinished (pending or held),
    so one item's messages arrive in order, also after WeChat was down; a row that must wait
    is moved out of the window (its ``next_attempt_at`` set to when the earlier one can be
    done at the earliest), and the earlier one's end wakes it. Each claimed row gets
    ``lease_expires_at = now + OUTBOX_LEASE_SECONDS`` and ``lease_token + 1``. The new
    ``lease_token`` is the claim's token: every later write is
    ``UPDATE … WHERE id = :id AND lease_token = :token AND status = 'pending'``, so a worker
    whose lease expired and was taken over (the new holder incremented ``lease_token``) writes
    nothing. Rows without a channel (no WeChat identity, no template, no subscription left)
    are settled as ``skipped`` inside the claim, without any call to WeChat; so are the notices of an item
    the resident has withdrawn since they were queued (``notifications.WITHDRAWN_NOTE``).

Accounting
    ``attempts`` counts sends — calls to WeChat — and nothing else: it is what
    ``OUTBOX_MAX_ATTEMPTS`` and the backoff count, and it is written with the send's outcome.
    A claim that ends without a send is recorded apart: given back to wait for the quota
    (``quota_holds + 1``; a send that met 45009 counts in both), or given back because the
    worker is stopping or has too little lease left (``releases + 1``). A claim whose worker
    died leaves only its ``lease_token``. So a row claimed and released a hundred times still
    has its whole retry budget, and no row passes ``OUTBOX_MAX_ATTEMPTS`` sends.

Subscription credits
    ``SubscriptionCredit.credits`` counts the credits still *free* for a one-time template, and is
    1 (on) or 0 (off) for a long-term one (``backend.wechat.subscriptions``): a long-term
    template's claim checks that it is on and takes nothing, gives nothing back, and a 43101
    switches it off. For one-time templates: the claim that takes a
    row without a reservation (``has_reserved_credit`` false) reserves one credit with
    ``UPDATE … SET credits = credits - 1 WHERE credits > 0`` in the claim transaction and
    marks the row; two workers therefore cannot both take the last credit (row locks on
    PostgreSQL, the IMMEDIATE transaction on SQLite), and no reservation is free to be taken
    twice. A pending or held row keeps its reservation across retries, releases and lease
    take-overs. Recording ``sent`` keeps it: the credit is spent. Recording ``dead`` or
    ``failed`` gives it back (the mark is cleared), except for 43101, where WeChat says none
    is left and the count for that template drops to zero. An administrator's retry resets
    ``attempts`` to 0 (a fresh budget of sends); the next claim reserves afresh.

Delivery and its one unavoidable window
    Each message is sent outside any transaction, then its outcome is recorded in a new
    short transaction guarded by the lease token. Before each send the worker checks that
    at least half of the lease is left, so a call that ends within its timeout ends inside
    the lease (keep ``OUTBOX_LEASE_SECONDS`` ≥ twice the longest WeChat call); rows it no
    longer has time for are released. Exactly-once towards WeChat is impossible in general:
    if the process dies after WeChat accepted a message but before the ``sent`` commit, the
    lease expires and another worker sends it again. The window is one commit long (the
    outcome is recorded right after the call returns, one row per transaction), and a
    message whose send timed out is retried — WeChat offers no idempotency key.

Outcomes
    success → sent. HTTP errors, timeouts, connection errors, -1 and unknown codes → retry
    at ``now + uniform(0, min(max, base·2^(attempts-1)))`` (full jitter), and after
    ``OUTBOX_MAX_ATTEMPTS`` → dead with the last error. 45009 → the row is held and a hold
    row (``ThrottleCounter`` ``wechat:quota-hold``) stops every worker's claims until the
    quota resets (next midnight China time, or ``OUTBOX_QUOTA_HOLD_SECONDS``); the worker
    that met it makes no further call and holds the rest of its batch. Another worker
    already in the middle of a batch may make at most one more call, which meets the same
    45009. 43101, 40003, 47003, 40037, 41030 → failed, never retried. A token refused even
    after the client's capped refreshes (``TokenRefreshLimitExceeded``, 40001/40014/42001) is
    retried like a transient error, logged as an error, and pauses every worker
    (``wechat:auth-hold``) for the row's backoff, so a wrong secret cannot spend WeChat's
    2,000 token fetches a day.

Reminders
    ``run_forever`` also queues the deputies' overdue reminders every
    ``OUTBOX_OVERDUE_SCAN_SECONDS`` (``queue.queue_overdue_notices``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import current_app
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import DBAPIError

from backend import database
from backend.extensions import db
from backend.models import Item, ItemStatus, OutboxMessage, OutboxStatus, SubscriptionCredit, ThrottleCounter, utcnow
from backend.ops import heartbeat
from backend.outbox.notifications import (
    NoChannel,
    Notice,
    build_notice,
    prefetch,
)
from backend.outbox.queue import DEPUTY_KINDS, queue_due_soon_notices, queue_overdue_notices
from backend.timefmt import CHINA

log = logging.getLogger("backend.outbox")

QUOTA_HOLD_KEY = "wechat:quota-hold"
AUTH_HOLD_KEY = "wechat:auth-hold"
PERMANENT_ERRCODES = frozenset({43101, 40003, 47003, 40037, 41030})
NO_SUBSCRIPTION_LEFT = 43101
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
QUOTA_ERRCODE = 45009
ERROR_TEXT_MAX = 500

_outbox = OutboxMessage.__table__
_credits = SubscriptionCredit.__table__
_counters = ThrottleCounter.__table__
_UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.HELD)


@dataclass(frozen=True)
class Claim:
    """A row this worker holds the lease of, with everything needed to send it."""

    id: int
    token: int  # ``lease_token`` after the claim
    lease_expires_at: datetime
    notice: Notice
    item_id: int | None = None
    resident_id: int | None = None
    staff_user_id: int | None = None
    has_followers: bool = False  # later messages of the same item and recipient were waiting at claim time
    attempts: int = 0  # sends before this claim's
    folded: tuple[int, ...] = ()  # the account's other unsent deputy notices this message tells (now merged)


@dataclass(frozen=True)
class Outcome:
    """How a send ended, in the worker's terms."""

    kind: str  # "sent" | "retry" | "quota" | "failed" | "auth"
    error: str = ""
    errcode: int | None = None


# --- settings and small helpers -----------------------------------------------------------


def backoff_delay(attempts: int, rng: random.Random | None = None) -> float:
    """Seconds until the next try after ``attempts`` tries: full jitter, ``uniform(0, min(max, base·2^(attempts-1)))``."""
    return (rng or random).uniform(0, backoff_cap(attempts))


def backoff_cap(attempts: int) -> float:
    """The longest wait after ``attempts`` tries: ``min(max, base·2^(attempts-1))``."""
    config = current_app.config
    exponent = min(max(attempts - 1, 0), 60)  # 2^60 × any base is past any sensible maximum
    return min(config["OUTBOX_BACKOFF_MAX_SECONDS"], config["OUTBOX_BACKOFF_BASE_SECONDS"] * 2**exponent)


def next_quota_reset(now: datetime) -> datetime:
    """When WeChat's daily quotas reset after ``now``: the next midnight, China time (as UTC)."""
    local = now.astimezone(CHINA)
    midnight = datetime(local.year, local.month, local.day, tzinfo=CHINA) + timedelta(days=1)
    return midnight.astimezone(now.tzinfo)


def quota_hold_until(now: datetime) -> datetime:
    """The end of a 45009 hold starting ``now`` (``OUTBOX_QUOTA_HOLD_SECONDS`` overrides the midnight reset)."""
    seconds = current_app.config.get("OUTBOX_QUOTA_HOLD_SECONDS")
    if seconds is not None:
        return now + timedelta(seconds=float(seconds))
    return next_quota_reset(now)


def active_hold(now: datetime | None = None) -> datetime | None:
    """Until when every worker must leave WeChat alone (quota or token hold), or None. Runs in the caller's transaction."""
    now = now or utcnow()
    until = db.session.scalar(
        select(func.max(ThrottleCounter.expires_at)).where(
            ThrottleCounter.key.in_((QUOTA_HOLD_KEY, AUTH_HOLD_KEY)), ThrottleCounter.expires_at > now
        )
    )
    return until


def _set_hold(key: str, until: datetime) -> None:
    """Start or extend a hold (flushes in the caller's transaction)."""
    stmt = database.dialect_insert(_counters).values(key=key, count=1, expires_at=until)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_counters.c.key],
        set_={"count": _counters.c.count + 1, "expires_at": stmt.excluded.expires_at},
    )
    db.session.execute(stmt)


def _short(text: str) -> str:
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 1] + "…"


# --- claiming -----------------------------------------------------------------------------


WINDOW_FACTOR = 3  # candidates looked at per claim, per row claimed
WAIT_RECHECK_SECONDS = 2.0  # how long a row waiting for one another worker holds stays out of the window


def _candidates_query(now: datetime, window: int):
    """Due rows, oldest first, at most ``window``, locked (``SKIP LOCKED`` on PostgreSQL).

    Walks the ``(status, next_attempt_at)`` index and stops after ``window`` rows, so a claim
    costs the same with ten rows waiting or a hundred thousand (after a long WeChat outage).
    """
    return (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at <= now),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(window)
        .with_for_update(skip_locked=True)
    )


def _recipient_key(item_id, resident_id, staff_user_id) -> tuple:
    return (item_id, resident_id, staff_user_id)


def _unfinished_siblings(item_ids: set[int]) -> dict[tuple, list]:
    """Unfinished rows of these items per (item, recipient), in id order (the order they must go out in)."""
    rows = db.session.execute(
        select(
            _outbox.c.id,
            _outbox.c.item_id,
            _outbox.c.resident_id,
            _outbox.c.staff_user_id,
            _outbox.c.next_attempt_at,
            _outbox.c.lease_expires_at,
        )
        .where(_outbox.c.item_id.in_(item_ids), _outbox.c.status.in_(_UNFINISHED))
        .order_by(_outbox.c.id)
    ).all()
    groups: dict[tuple, list] = {}
    for sibling in rows:
        groups.setdefault(_recipient_key(sibling.item_id, sibling.resident_id, sibling.staff_user_id), []).append(
            sibling
        )
    return groups


def _wake_next(item_id: int | None, resident_id, staff_user_id, after_id: int, now: datetime) -> None:
    """Make the next message of the same item and recipient due now (it waited for this one)."""
    if item_id is None:
        return
    following = (
        select(func.min(_outbox.c.id))
        .where(
            _outbox.c.item_id == item_id,
            _outbox.c.id > after_id,
            _outbox.c.status.in_(_UNFINISHED),
            _outbox.c.resident_id.is_not_distinct_from(resident_id),
            _outbox.c.staff_user_id.is_not_distinct_from(staff_user_id),
        )
        .scalar_subquery()
    )
    db.session.execute(
        update(_outbox)
        .where(
            _outbox.c.id == following,
            _outbox.c.status == OutboxStatus.PENDING,
            _outbox.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )


def _reserve_credit(notice: Notice, now: datetime) -> bool:
    """Set one credit aside for ``notice``; False when the user allowed nothing more for its template.

    One-time: takes one free credit. Long-term: the template must be switched on, and stays on.
    """
    where = (_credits.c.openid == notice.openid, _credits.c.template_id == notice.template_id)
    if notice.is_long_term:
        return bool(db.session.scalar(select(func.count()).where(*where, _credits.c.credits > 0)))
    result = db.session.execute(
        update(_credits).where(*where, _credits.c.credits > 0).values(credits=_credits.c.credits - 1, updated_at=now)
    )
    return result.rowcount == 1


def _return_credit(notice: Notice, now: datetime, *, to_zero: bool = False) -> None:
    """Give a reserved credit back, or (43101) set the count to zero because WeChat says none is left.

    A long-term template took nothing, so nothing is given back; a 43101 switches it off.
    """
    if notice.is_long_term and not to_zero:
        return
    value = 0 if to_zero else _credits.c.credits + 1
    db.session.execute(
        update(_credits)
        .where(_credits.c.openid == notice.openid, _credits.c.template_id == notice.template_id)
        .values(credits=value, updated_at=now)
    )


def claim(batch: int) -> tuple[list[Claim], int, datetime | None]:
    """Claim up to ``batch`` due rows in one transaction and commit it.

    Returns the claims to send, how many rows were settled on the spot (skipped or failed
    without a call), and the hold in force (then nothing is claimed).

    A candidate goes out only when every earlier unfinished message of its item to the same
    recipient is settled. One that must wait is moved out of the way (``next_attempt_at``
    set to when the earlier one can be done at the earliest), so waiting rows never fill the
    window; recording the earlier one's end wakes it (``_wake_next``).
    """
    now = utcnow()
    config = current_app.config
    lease = timedelta(seconds=config["OUTBOX_LEASE_SECONDS"])
    try:
        hold = active_hold(now)
        if hold is not None:
            db.session.rollback()
            return [], 0, hold
        # Held rows whose hold is over are pending again (nothing is claimed during a hold).
        db.session.execute(
            update(_outbox)
            .where(_outbox.c.status == OutboxStatus.HELD, _outbox.c.next_attempt_at <= now)
            .values(status=OutboxStatus.PENDING)
        )
        candidates = db.session.scalars(_candidates_query(now, batch * WINDOW_FACTOR)).all()
        groups = _unfinished_siblings({c.item_id for c in candidates if c.item_id is not None})
        loaded = prefetch(candidates)  # noqa: F841 - kept alive for build_notice's look-ups
        idle = timedelta(seconds=config["OUTBOX_IDLE_SECONDS"])
        recheck = timedelta(seconds=WAIT_RECHECK_SECONDS)
        done_here: set[int] = set()  # settled in this claim: no longer in anyone's way
        claimed_here: set[int] = set()
        claims: list[Claim] = []
        settled = 0
        with db.session.no_autoflush:  # the rows' changes go out together at commit
            for row in sorted(candidates, key=lambda r: r.id):
                if len(claims) >= batch:
                    break
                if row.status != OutboxStatus.PENDING:  # folded into a message claimed just now
                    continue
                group = groups.get(_recipient_key(row.item_id, row.resident_id, row.staff_user_id), [])
                waiting_for = next((s for s in group if s.id < row.id and s.id not in done_here), None)
                if row.item_id is not None and waiting_for is not None:
                    # Out of the window until the earlier one can be done at the earliest: after its backoff,
                    # after this claim's lease (its end wakes this one), or a recheck while another worker holds it.
                    in_flight = waiting_for.lease_expires_at
                    row.next_attempt_at = max(
                        now + idle,
                        waiting_for.next_attempt_at,
                        min(in_flight, now + recheck) if in_flight is not None else now,
                        now + lease if waiting_for.id in claimed_here else now,
                    )
                    continue
                has_followers = any(s.id > row.id for s in group)
                outcome = _claim_row(row, now, lease, has_followers)
                if isinstance(outcome, Claim):
                    claims.append(outcome)
                    claimed_here.add(row.id)
                    done_here.update(outcome.folded)
                else:
                    settled += 1
                    done_here.add(row.id)
                    if has_followers:
                        _wake_next(row.item_id, row.resident_id, row.staff_user_id, row.id, now)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return claims, settled, None


def _claim_row(row: OutboxMessage, now: datetime, lease: timedelta, has_followers: bool) -> Claim | None:
    """Lease one row and return its claim; or settle it at once (skipped, failed) and return None."""
    try:
        notice = build_notice(row)
    except NoChannel as exc:
        _settle_in_claim(row, OutboxStatus.SKIPPED, str(exc))
        return None
    except DBAPIError:
        raise  # the database's trouble, not the message's: the whole claim is tried again
    except Exception as exc:  # a notice that cannot be built will not build on a retry either
        log.exception("outbox %s (%s): cannot build the message", row.id, row.kind)
        _settle_in_claim(row, OutboxStatus.FAILED, f"cannot build the message: {exc!r}")
        return None
    if not row.has_reserved_credit:
        if not _reserve_credit(notice, now):
            reason = f"{row.kind}: no subscription left for template {notice.template_id} ({notice.purpose})"
            _settle_in_claim(row, OutboxStatus.SKIPPED, reason)
            return None
        row.has_reserved_credit = True
    folded = _fold(row, now)
    if folded:
        notice = build_notice(row)  # now a digest of every step it tells
    row.lease_token += 1
    row.lease_expires_at = now + lease
    return Claim(
        folded=folded,
        id=row.id,
        token=row.lease_token,
        attempts=row.attempts,
        lease_expires_at=now + lease,
        notice=notice,
        item_id=row.item_id,
        resident_id=row.resident_id,
        staff_user_id=row.staff_user_id,
        has_followers=has_followers,
    )


def _fold(row: OutboxMessage, now: datetime) -> tuple[int, ...]:
    """Fold the account's other unsent deputy notices into ``row``: one message tells them all.

    Deputy notices queued within ``NOTICE_COALESCE_SECONDS`` wait for the window's end
    (``queue``); the first one claimed takes every other one of the same account that is
    pending, never tried, holds no credit and no live lease, and is not of a withdrawn item (that one
    is skipped on its own claim) — locked, skipping rows another worker holds — lists them in its
    payload (``also``) and marks them ``merged``. In the claim's transaction: a step is told by the
    message of exactly one row.
    """
    if row.kind not in DEPUTY_KINDS or row.staff_user_id is None:
        return ()
    if float(current_app.config["NOTICE_COALESCE_SECONDS"]) <= 0:  # every step its own message
        return ()
    followers = db.session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.staff_user_id == row.staff_user_id,
            OutboxMessage.kind.in_(DEPUTY_KINDS),
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.attempts == 0,
            OutboxMessage.has_reserved_credit.is_(False),
            OutboxMessage.id != row.id,
            or_(OutboxMessage.lease_expires_at.is_(None), OutboxMessage.lease_expires_at <= now),
            # A withdrawn item's notice is not told in a digest: it is skipped on its own claim, saying why.
            ~exists().where(Item.id == OutboxMessage.item_id, Item.status == ItemStatus.WITHDRAWN),
        )
        .order_by(OutboxMessage.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not followers:
        return ()
    also = list((row.payload or {}).get("also", []))
    for follower in followers:
        payload = dict(follower.payload or {})
        nested = payload.pop("also", [])
        also.append({"kind": follower.kind, "item_id": follower.item_id, "outbox_id": follower.id, **payload})
        also.extend(nested)
        follower.status = OutboxStatus.MERGED
        follower.last_error = f"told in outbox #{row.id}"
        follower.lease_expires_at = None
    row.payload = {**(row.payload or {}), "also": also}
    return tuple(f.id for f in followers)


def _settle_in_claim(row: OutboxMessage, status: OutboxStatus, reason: str) -> None:
    row.status = status
    row.last_error = _short(reason)
    row.lease_expires_at = None
    if status == OutboxStatus.SKIPPED:
        log.info("outbox %s (%s) skipped: %s", row.id, row.kind, reason)


# --- sending ------------------------------------------------------------------------------


def _wechat():
    """The WeChat send function and the exception classes it raises (imported late: tests patch nothing here)."""
    from wechatpy.exceptions import APILimitedException, WeChatClientException

    from backend.wechat import api

    token_limit = getattr(api, "TokenRefreshLimitExceeded", None)
    if token_limit is None:
        from backend.wechat import client

        token_limit = getattr(client, "TokenRefreshLimitExceeded", None)
    return api.send_subscribe_message, WeChatClientException, APILimitedException, token_limit, api


def classify(exc: BaseException) -> Outcome:
    """What a send's exception means for the row: retry, hold, fail for good, or token trouble."""
    _, client_error, limited, token_limit, _api = _wechat()
    errcode = getattr(exc, "errcode", None)
    try:
        errcode = int(errcode) if errcode is not None else None
    except (TypeError, ValueError):
        errcode = None
    errmsg = getattr(exc, "errmsg", None) or str(exc) or type(exc).__name__
    if isinstance(exc, limited) or errcode == QUOTA_ERRCODE:
        return Outcome("quota", f"{QUOTA_ERRCODE} daily quota reached: {errmsg}", QUOTA_ERRCODE)
    if (token_limit is not None and isinstance(exc, token_limit)) or errcode in TOKEN_ERRCODES:
        return Outcome(
            "auth",
            f"access token refused ({errcode}) even after refreshing it: check WECHAT_APPID and "
            f"WECHAT_SECRET ({errmsg})",
            errcode,
        )
    if isinstance(exc, client_error):
        if errcode in PERMANENT_ERRCODES:
            return Outcome("failed", f"{errcode} {errmsg}", errcode)
        if errcode is None:
            return Outcome("retry", f"HTTP error: {errmsg}")
        return Outcome("retry", f"{errcode} {errmsg}", errcode)
    if isinstance(exc, requests.Timeout):
        return Outcome("retry", f"timeout: {exc}")
    if isinstance(exc, requests.RequestException):
        return Outcome("retry", f"{type(exc).__name__}: {exc}")
    return Outcome("retry", f"unexpected {type(exc).__name__}: {exc}")


def send(notice: Notice) -> Outcome:
    """Send one subscribe message (mini-program, or the service account's bizsend); never raises for WeChat's
    or the network's errors."""
    send_subscribe_message, *_, api = _wechat()
    try:
        if notice.channel == "official_account":
            api.send_oa_subscribe_message(notice.openid, notice.template_id, notice.data, url=notice.page)
        else:
            send_subscribe_message(notice.openid, notice.template_id, notice.data, page=notice.page)
    except Exception as exc:
        outcome = classify(exc)
        if outcome.error.startswith("unexpected"):
            log.exception("outbox: unexpected error while sending")
        return outcome
    return Outcome("sent")


# --- recording ----------------------------------------------------------------------------


def _guarded(claim_: Claim):
    """An UPDATE of the claimed row that matches only while this claim still holds it."""
    return update(_outbox).where(
        _outbox.c.id == claim_.id, _outbox.c.lease_token == claim_.token, _outbox.c.status == OutboxStatus.PENDING
    )


def record(claim_: Claim, outcome: Outcome) -> bool:
    """Record a send's outcome (and count the send) in its own transaction; False when the lease was lost (nothing written)."""
    now = utcnow()
    config = current_app.config
    notice = claim_.notice
    sends = claim_.attempts + 1  # this claim's send included
    credit: str | None = None  # "return" | "zero"
    values: dict = {"attempts": sends, "lease_expires_at": None}
    if outcome.kind == "sent":
        values.update(status=OutboxStatus.SENT, sent_at=now, last_error="")
    elif outcome.kind == "failed":
        values.update(status=OutboxStatus.FAILED, last_error=_short(outcome.error), has_reserved_credit=False)
        credit = "zero" if outcome.errcode == NO_SUBSCRIPTION_LEFT else "return"
    elif outcome.kind == "quota":
        values.update(
            status=OutboxStatus.HELD,
            next_attempt_at=quota_hold_until(now),
            last_error=_short(outcome.error),
            quota_holds=_outbox.c.quota_holds + 1,
        )
    elif sends >= config["OUTBOX_MAX_ATTEMPTS"]:
        values.update(status=OutboxStatus.DEAD, last_error=_short(outcome.error), has_reserved_credit=False)
        credit = "return"
    else:
        values.update(next_attempt_at=now + timedelta(seconds=backoff_delay(sends)), last_error=_short(outcome.error))
    try:
        if db.session.execute(_guarded(claim_).values(**values)).rowcount != 1:
            db.session.rollback()
            log.warning("outbox %s: lease lost before its outcome (%s) was recorded", claim_.id, outcome.kind)
            return False
        if credit is not None:
            _return_credit(notice, now, to_zero=credit == "zero")
        if claim_.has_followers and values.get("status") in (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.DEAD):
            _wake_next(claim_.item_id, claim_.resident_id, claim_.staff_user_id, claim_.id, now)
        if outcome.kind == "quota":
            _set_hold(QUOTA_HOLD_KEY, values["next_attempt_at"])
        elif outcome.kind == "auth":
            # Every worker waits out the row's own backoff (its ceiling, without jitter).
            _set_hold(AUTH_HOLD_KEY, now + timedelta(seconds=backoff_cap(sends + 1)))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if outcome.kind == "auth":
        log.error("outbox %s: %s; every worker pauses before trying again", claim_.id, outcome.error)
    elif outcome.kind == "quota":
        log.warning("outbox: WeChat's daily quota is spent; nothing is sent until %s", values["next_attempt_at"])
    elif outcome.kind != "sent":
        log.info("outbox %s: %s (%s)", claim_.id, outcome.kind, outcome.error)
    return True


def release(claims: list[Claim], *, hold_until: datetime | None = None) -> None:
    """Give back claims this worker will not send now: free them at once, or hold them (45009).

    Nothing was sent: ``attempts`` stays, and the claim is counted as a release or a hold.
    """
    if not claims:
        return
    values: dict = {"lease_expires_at": None}
    if hold_until is not None:
        values.update(status=OutboxStatus.HELD, next_attempt_at=hold_until, quota_holds=_outbox.c.quota_holds + 1)
    else:
        values["releases"] = _outbox.c.releases + 1
    with database.committed():
        for claim_ in claims:
            db.session.execute(_guarded(claim_).values(**values))


RECORD_TRIES = 5


def _record_persistently(claim_: Claim, outcome: Outcome) -> None:
    """``record``, retried through a database hiccup: a message WeChat accepted but left unrecorded is sent again."""
    for attempt in range(RECORD_TRIES):
        try:
            record(claim_, outcome)
            return
        except DBAPIError:
            if attempt == RECORD_TRIES - 1:
                raise
            log.warning("outbox %s: recording %s failed; trying again", claim_.id, outcome.kind, exc_info=True)
            time.sleep(0.2 * 2**attempt)


# --- the loop -----------------------------------------------------------------------------


def deliver(claims: list[Claim], stop_event: threading.Event | None = None) -> int:
    """Send claimed messages one by one, recording each; stop at a hold or when asked. Returns how many were settled."""
    done = 0
    for index, claim_ in enumerate(claims):
        now = utcnow()
        lease = timedelta(seconds=current_app.config["OUTBOX_LEASE_SECONDS"])
        if claim_.lease_expires_at - now < lease / 2 or (stop_event is not None and stop_event.is_set()):
            # Not enough lease left to be sure a send ends inside it (or the worker is stopping):
            # give the rest back at once rather than leave them leased.
            release(claims[index:])
            break
        outcome = send(claim_.notice)
        _record_persistently(claim_, outcome)
        done += 1
        if outcome.kind == "quota":
            release(claims[index + 1 :], hold_until=quota_hold_until(utcnow()))
            break
        if outcome.kind == "auth":
            release(claims[index + 1 :])
            break
    return done


def run_once(batch: int | None = None) -> int:
    """Claim due rows and deliver them; return how many rows were settled (0 when idle or held)."""
    claims, settled, _hold = claim(batch or current_app.config["OUTBOX_BATCH"])
    return settled + deliver(claims)


def run_forever(stop_event: threading.Event, batch: int | None = None) -> None:
    """Deliver until ``stop_event`` is set, sleeping briefly when idle and until a hold ends when held."""
    idle = current_app.config["OUTBOX_IDLE_SECONDS"]
    scan_every = current_app.config["OUTBOX_OVERDUE_SCAN_SECONDS"]
    fold_every = current_app.config["SCAN_FOLD_SECONDS"]
    next_scan = next_fold = time.monotonic()
    while not stop_event.is_set():
        try:
            heartbeat.beat("outbox")  # every few seconds: /readyz and the admin page see the worker alive
            if fold_every and time.monotonic() >= next_fold:
                next_fold = time.monotonic() + fold_every
                fold_code_scans()
            if scan_every and time.monotonic() >= next_scan:
                next_scan = time.monotonic() + scan_every
                queue_overdue()
                purge_throttle_counters()
                run_retention_daily()
            claims, settled, hold = claim(batch or current_app.config["OUTBOX_BATCH"])
            done = settled + deliver(claims, stop_event)
        except Exception:  # the database restarted, a lock timed out…: wait and go on
            log.exception("outbox: worker step failed; retrying shortly")
            db.session.rollback()
            stop_event.wait(idle)
            continue
        if done == 0:
            wait = idle
            if hold is not None:
                wait = max(0.05, min((hold - utcnow()).total_seconds(), idle * 30))
            stop_event.wait(wait)
    heartbeat.stop("outbox")


def queue_overdue() -> int:
    """Queue reminders for items about to be overdue or overdue (``notifications``) and commit."""
    with database.committed():
        now = utcnow()
        count = queue_due_soon_notices(now) + queue_overdue_notices(now)
    if count:
        log.info("outbox: %s overdue reminder(s) queued", count)
    return count


def fold_code_scans() -> int:
    """Add the scans counted in Redis to the table (``qr.scans.fold_scans``, which commits each batch)."""
    from backend.qr import scans

    return scans.fold_scans()


def purge_throttle_counters() -> int:
    """Delete the throttle counters whose window is over (one row per address seen otherwise stays forever)."""
    from backend import throttle

    with database.committed():
        count = throttle.purge_expired()
    return count


def run_retention_daily() -> int | None:
    """Anonymise what the retention period let go (``retention.run_daily``: once a day, one process at a time) and commit."""
    from backend.items import retention

    with database.committed():
        count = retention.run_daily()
    if count:
        log.info("outbox: retention anonymised %s item(s)", count)
    return count


def status_counts() -> dict[str, int]:
    """How many outbox rows are in each status (for ``flask outbox status`` and the bench)."""
    rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    db.session.rollback()
    return {str(status): count for status, count in rows}
