"""The console's static files, read once from the installed package and served from memory.

Why not ``add_static``: the package may be installed as a wheel (or zipped), the files are few and small, and
serving from memory lets every response carry the console's security headers and a strong ETag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

from relayd.web.console.security import harden
from relayd.web.errors import NotFound

STATIC_PREFIX = "/console/static"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(package: str = "relayd.web.console", folder: str = "static") -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for item in resources.files(package).joinpath(folder).iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            body = item.read_bytes()
            assets[item.name] = Asset(body, _TYPES[suffix], '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return assets


class Assets:
    def __init__(self, assets: dict[str, Asset]) -> None:
        self._assets = assets

    async def handle(self, request: web.Request) -> web.StreamResponse:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            raise NotFound("no such console file")
        if request.headers.get("If-None-Match") == asset.etag:
            return harden(web.Response(status=304, headers={"ETag": asset.etag}), cache=True)
        response = web.Response(body=asset.body, content_type=asset.content_type, headers={"ETag": asset.etag})
        if asset.content_type.startswith("text/"):
            response.charset = "utf-8"
        return harden(response, cache=True)
