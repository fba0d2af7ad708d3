"""A pure ASGI middleware that edits only a response's start (status and headers): bodies, streaming
responses and HEAD pass through untouched, which Starlette's BaseHTTPMiddleware would not allow."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseStartMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Made here, so that request.state is this dict all the way in (HeadAsGet passes on a copy of
        # the scope) and edit() sees what the route put there.
        scope.setdefault("state", {})

        async def send_edited(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = self.edit(scope, message)
            await send(message)

        await self.app(scope, receive, send_edited)

    def edit(self, scope: Scope, message: Message) -> Message:
        """The response's start message as it should go out."""
        raise NotImplementedError
