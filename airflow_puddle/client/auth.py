"""Authorizers: an API key pair in, a token out, shared by every client built on them."""

from __future__ import annotations

import asyncio
import os
import threading

from airflow_puddle._proto.puddle.v2 import auth_service_pb2
from airflow_puddle.client._transport import (
    AsyncChannel,
    ChannelConfig,
    RetryPolicy,
    Rpc,
    SyncChannel,
    loop_changed,
)
from airflow_puddle.client.address import Target
from airflow_puddle.client.models import LoginUser
from airflow_puddle.domain.defaults import CALL_TIMEOUT_S
from airflow_puddle.domain.validation import validate_call_timeout

ENV_SERVER_ADDRESS = "PUDDLE_SERVER_ADDRESS"
ENV_API_KEY_ID = "PUDDLE_API_KEY_ID"
ENV_API_SECRET_KEY = "PUDDLE_API_SECRET_KEY"


def _given_or_env(field: str, value: str | None, env: str) -> str:
    """``value`` if given (an empty string is an error, not "use the environment"), else ``$env``."""
    if value is None:
        found = os.environ.get(env)
        if not found:
            raise ValueError(f"{field}: not given and {env} is not set")
        return found
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: must be a non-empty string when given (pass None to read {env})")
    return value


def resolve_server_address(server_address: str | None) -> str:
    """``server_address``, else ``$PUDDLE_SERVER_ADDRESS``; ``ValueError`` when neither is set."""
    return _given_or_env("server_address", server_address, ENV_SERVER_ADDRESS)


class BaseAuthorizer:
    """Credentials, token and user; no I/O. :class:`Authorizer` and :class:`AsyncAuthorizer` add it."""

    def __init__(
        self,
        server_address: str | None = None,
        api_key_id: str | None = None,
        api_secret_key: str | None = None,
        *,
        ca_cert: str | None = None,
        timeout_s: float = CALL_TIMEOUT_S,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self._server_address = resolve_server_address(server_address)
        key_id = _given_or_env("api_key_id", api_key_id, ENV_API_KEY_ID)
        secret = _given_or_env("api_secret_key", api_secret_key, ENV_API_SECRET_KEY)
        timeout_s = validate_call_timeout(timeout_s)
        self._api_key_id = key_id
        self._api_secret_key = secret
        self.config = ChannelConfig(
            Target.parse(self._server_address), ca_cert, timeout_s, retry_policy or RetryPolicy()
        )
        self._token: str | None = None
        self._user: LoginUser | None = None
        self._login_lock = threading.Lock()
        self.channel = self._channel_type(self.config)

    _channel_type: type = SyncChannel

    @property
    def server_address(self) -> str:
        """Backend address."""
        return self._server_address

    @property
    def token(self) -> str | None:
        """The current token, None before the first login. A secret: never log it."""
        return self._token

    @property
    def user(self) -> LoginUser | None:
        """The logged-in user, None before the first login."""
        return self._user

    def _login_rpc(self) -> Rpc:
        request = auth_service_pb2.LoginRequest(
            api_key_id=self._api_key_id, api_secret_key=self._api_secret_key
        )
        # Logging in again is harmless, so a transient failure may be retried.
        return Rpc("AuthService", "Login", request, idempotent=True, authenticated=False)

    def _logout_rpc(self) -> Rpc:
        request = auth_service_pb2.LogoutRequest(token=self._token or "")
        return Rpc("AuthService", "Logout", request, idempotent=True, authenticated=False)

    def _accept(self, response: auth_service_pb2.LoginResponse) -> None:
        self._token = response.token
        self._user = LoginUser(response.user)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(server_address={self._server_address!r}, api_key_id={self._api_key_id!r})"


class Authorizer(BaseAuthorizer):
    """Logs in with an API key pair and holds the token; owns the channel its clients share.

    Arguments left out are read from ``PUDDLE_SERVER_ADDRESS``, ``PUDDLE_API_KEY_ID`` and
    ``PUDDLE_API_SECRET_KEY``. ``ca_cert`` is PEM text for a private CA (TLS only).
    """

    channel: SyncChannel

    def login(self) -> None:
        """Log in, replacing any token held. Raises :class:`AuthError` on a bad key pair."""
        with self._login_lock:
            self._accept(self.channel.call(self._login_rpc()))

    def logout(self) -> None:
        """Give the token back to the backend and forget it."""
        if self._token is not None:
            self.channel.call(self._logout_rpc())
        self._token = self._user = None

    def token_for_call(self, rejected: str | None = None) -> str:
        """A token for the next call: the one held, or a fresh login when none is held or it was ``rejected``.

        Single flight: callers that find no usable token wait for one login, not one each.
        """
        token = self._token
        if token is not None and token != rejected:
            return token
        with self._login_lock:
            if self._token is None or self._token == rejected:
                self._accept(self.channel.call(self._login_rpc()))
            assert self._token is not None
            return self._token

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


class AsyncAuthorizer(BaseAuthorizer):
    """Async version of :class:`Authorizer` over ``grpc.aio``, for triggers."""

    _channel_type = AsyncChannel
    channel: AsyncChannel
    _async_lock: asyncio.Lock | None = None
    _lock_loop: asyncio.AbstractEventLoop | None = None

    def _lock(self) -> asyncio.Lock:
        """The login lock of the running loop (a new one after an earlier ``asyncio.run()`` ended)."""
        if self._async_lock is None or loop_changed("this authorizer", self._lock_loop):
            self._async_lock, self._lock_loop = asyncio.Lock(), asyncio.get_running_loop()
        return self._async_lock

    async def login(self) -> None:
        """Async version of :meth:`Authorizer.login`."""
        async with self._lock():
            self._accept(await self.channel.call(self._login_rpc()))

    async def logout(self) -> None:
        """Async version of :meth:`Authorizer.logout`."""
        if self._token is not None:
            await self.channel.call(self._logout_rpc())
        self._token = self._user = None

    async def token_for_call(self, rejected: str | None = None) -> str:
        """Async version of :meth:`Authorizer.token_for_call` (single flight on this event loop)."""
        token = self._token
        if token is not None and token != rejected:
            return token
        async with self._lock():
            if self._token is None or self._token == rejected:
                self._accept(await self.channel.call(self._login_rpc()))
            assert self._token is not None
            return self._token

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()
