"""The HTTP API (FastAPI): one router per resource, each route declaring the roles that may call
it (``auth.Allowed``). Handlers are thin: they authenticate, then call the store's modules.

Every refusal is ``{"error": CODE, "message": ...}`` with a 4xx status and changes nothing,
except a wrong staff PIN, which is counted towards a lockout (storeserver/staff.py).
"""

from .app import API_VERSION, create_app

__all__ = ["API_VERSION", "create_app"]
