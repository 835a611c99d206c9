"""Rate limits (pure logic, the clock passed in).

- Per (caller, user): every evaluation counts; after `max_failures` without
  a proven success the user is locked until the operator's recovery step
  (`hardener unlock`). From `backoff_after` failures on, each evaluation must
  wait `backoff_base_ms * 2^(failures - backoff_after)` (capped) after the
  previous one.
- Per caller and globally: token buckets, refused with a retry-after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hardener.datadir import Policy
from hardener.errors import RateLimited, UserBackoff, UserLocked
from hardener.store import UserRow

LOCKED_HINT = (
    "the caller's recovery step: the hardener's operator runs"
    " `hardener unlock CALLER USER_ID` once the user is verified another way"
)


@dataclass(kw_only=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, n: float = 1.0) -> float:
        """Take n tokens; 0.0 if they were there, else seconds until they will be."""
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate if self.rate > 0 else math.inf


def backoff_ms(policy: Policy, failures: int) -> int:
    if policy.backoff_base_ms <= 0 or failures < policy.backoff_after:
        return 0
    exp = min(failures - policy.backoff_after, 30)
    return int(min(policy.backoff_base_ms * (2**exp), policy.backoff_max_ms))


def check_user(policy: Policy, user: UserRow | None, now: float) -> int:
    """Raise if this user may not be evaluated now; else the attempts left after this one."""
    failures = user.failures if user else 0
    if failures >= policy.max_failures:
        raise UserLocked(
            f"{failures} evaluations without a proven success: this user is locked",
            hint=LOCKED_HINT,
            attempts_left=0,
        )
    wait = backoff_ms(policy, failures)
    if wait and user is not None:
        elapsed_ms = (now - user.last_attempt_at) * 1000
        if elapsed_ms < wait:
            raise UserBackoff(
                f"{failures} evaluations without a proven success: wait before the next",
                retry_after_ms=max(1, math.ceil(wait - elapsed_ms)),
                attempts_left=policy.max_failures - failures,
            )
    return policy.max_failures - failures - 1


@dataclass(kw_only=True)
class RateLimits:
    policy: Policy
    global_bucket: TokenBucket = field(init=False)
    callers: dict[str, TokenBucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.global_bucket = TokenBucket(
            rate=self.policy.global_rate, burst=self.policy.global_burst
        )

    def take(self, caller: str, now: float, n: int = 1) -> None:
        bucket = self.callers.get(caller)
        if bucket is None:
            bucket = self.callers[caller] = TokenBucket(
                rate=self.policy.caller_rate, burst=self.policy.caller_burst
            )
        wait = bucket.take(now, n)
        if wait:
            raise RateLimited(
                f"caller {caller!r} is over its rate limit ({self.policy.caller_rate:g}/s)",
                retry_after_ms=max(1, math.ceil(wait * 1000)),
            )
        wait = self.global_bucket.take(now, n)
        if wait:
            bucket.tokens += n  # not the caller's fault: give its tokens back
            raise RateLimited(
                "the hardener is over its global rate limit",
                retry_after_ms=max(1, math.ceil(wait * 1000)),
            )
