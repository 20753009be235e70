"""Where actors run: ``inline`` (one process), ``local`` (spawned processes, the default), ``ray``.

All three run the same :class:`autostruct.rl.actor.Actor` behind the :class:`~autostruct.backends.base.Backend`
interface; :func:`make_backend` builds one from a :class:`~autostruct.config.BackendConfig`.
"""

from __future__ import annotations

from autostruct.backends.base import ActorFailure, Backend, Message
from autostruct.backends.inline import InlineBackend
from autostruct.backends.local import LocalBackend
from autostruct.backends.ray_backend import RayBackend
from autostruct.config import BackendConfig, RLConfig
from autostruct.errors import unknown_name

BACKENDS = ("inline", "local", "ray")


def make_backend(config: BackendConfig, rl: RLConfig | None = None) -> Backend:
    """The backend named by ``config.name`` (Ray is imported only when ``ray`` is chosen and started)."""
    if config.name == "inline":
        return InlineBackend()
    if config.name == "local":
        rl = rl or RLConfig()
        return LocalBackend(queue_size=rl.queue_size, batch_size=rl.batch_size)
    if config.name == "ray":
        return RayBackend(address=config.address)
    raise unknown_name("backend", config.name, BACKENDS)


__all__ = ["BACKENDS", "ActorFailure", "Backend", "Message", "make_backend"]
