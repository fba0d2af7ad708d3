"""(being written)"""

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter()


def error_feed(request: Request, message: str, status: int = 400) -> Response:
    return Response(message, status_code=status, media_type="text/plain")
