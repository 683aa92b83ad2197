"""Remote secret stores, one module each behind :class:`~botsecret.providers.base.Provider`."""

from .base import AccessDenied, Fetched, NotFound, Provider, ProviderError, RemoteRef, Unavailable

__all__ = ["AccessDenied", "Fetched", "NotFound", "Provider", "ProviderError", "RemoteRef", "Unavailable"]
