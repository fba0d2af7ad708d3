"""HEAD for every GET route (link checkers and feed readers ask HEAD first; FastAPI answers 405)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = (
                    {**message, "body": b"", "more_body": False} if not message.get("more_body") else None
                )
                if message is None:
                    return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
