"""The dashboard served by ``ideamine serve`` (server-rendered pages, no build step)."""

from ideamine.dashboard.pages import StoreSource, dashboard_router

__all__ = ["StoreSource", "dashboard_router"]
