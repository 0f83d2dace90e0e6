"""OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, and which
status each of Vetted's refusals gets — so the official clients raise the matching
exception (`AuthenticationError`, `NotFoundError`, `RateLimitError`...)."""

from __future__ import annotations

import json
from typing import Any

from vetted.core.local_api import Cancelled, ModelNotFound, NotSupported, PromptTooLong, QueueFull
from vetted.errors import InputError, Refused, VettedError
from vetted.textsafe import one_line


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": one_line(self.message), "type": self.type, "param": self.param,
                          "code": self.code}}

    def encoded(self) -> bytes:
        return json.dumps(self.body()).encode("utf-8")


def from_vetted(exc: BaseException) -> ApiError:
    """A core refusal as the API's error, its reason kept (what was checked, what was found)."""
    from vetted.policy.effective import PolicyRefused
    from vetted.runtime.engine import EngineCrashed, EngineError
    from vetted.runtime.templates import TemplateError

    if not isinstance(exc, VettedError):  # a bug, not a refusal: its text stays in the server's log
        return ApiError(500, f"the server failed to handle this request ({type(exc).__name__}; its log says why)",
                        "server_error", "internal_error")
    line = exc.line()
    if isinstance(exc, ModelNotFound):
        return ApiError(404, line, "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, QueueFull):
        return ApiError(429, line, "rate_limit_error", "queue_full")
    if isinstance(exc, PromptTooLong):
        return ApiError(400, line, "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(exc, NotSupported):
        return ApiError(400, line, "invalid_request_error", "unsupported")
    if isinstance(exc, Cancelled):
        return ApiError(499, line, "invalid_request_error", "cancelled")
    if isinstance(exc, PolicyRefused):
        return ApiError(403, line, "permission_error", "policy_refused", "model")
    if isinstance(exc, TemplateError):
        return ApiError(400, line, "invalid_request_error", "template_refused")
    if isinstance(exc, Refused):  # the pre-load re-check, a load race, memory
        return ApiError(403, line, "permission_error", "model_refused", "model")
    if isinstance(exc, InputError):
        return ApiError(400, line, "invalid_request_error", "invalid_value")
    if isinstance(exc, EngineCrashed):
        return ApiError(503, line, "server_error", "engine_crashed")
    if isinstance(exc, EngineError):
        return ApiError(500, line, "server_error", "engine_error")
    return ApiError(500, line, "server_error", "internal_error")
