"""The service's live page: `/` serves service/static/ (plain HTML and JavaScript, no build step,
nothing fetched from elsewhere), and the two reads the page and the client need that the API
does not give yet: the genesis (`/genesis`: instruments, contract sizes, the signing domain) and
the node's oracle marks (`/marks`).

The page reads everything else from the API: the order book and trades from the WebSockets, an
account's positions from /accounts/{id}, and the batch -> proof -> settlement pipeline from
/status and, where the service has it, /batches (a 404 there shows as "not available").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from rollup import units

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"page.js": "text/javascript", "page.css": "text/css"}

page_router = APIRouter()


@page_router.get("/", include_in_schema=False)
async def get_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@page_router.get("/genesis", summary="The node's genesis: instruments, risk parameters, the signing domain")
async def get_genesis(request: Request) -> dict[str, Any]:
    return request.app.state.service.node.genesis.model_dump(mode="json")


@page_router.get("/marks", summary="The oracle's marks and funding indexes as the node holds them")
async def get_marks(request: Request) -> dict[str, Any]:
    state = request.app.state.service.node.state
    return {
        "oracle_time": state.globals.oracle_time,
        "marks": [
            {"instrument": i, "name": inst.spec.name, "mark": inst.mark, "funding_index": inst.funding_index}
            for i, inst in sorted(state.instruments.items())
        ],
    }



@page_router.get("/static/units.js", include_in_schema=False)
async def get_units() -> Response:
    # the page's unit constants come from rollup/units.py, not from a second copy typed in JavaScript
    text = "".join(f"export const {name} = {getattr(units, name)};\n" for name in ("USD", "SIZE_SCALE", "MICRO_USD_PER_SIZE_UNIT"))
    return Response(text, media_type="text/javascript", headers={"Cache-Control": "no-store"})


@page_router.get("/static/{name}", include_in_schema=False)
async def get_static(name: str) -> FileResponse:
    # only the files shipped in service/static/, by their plain names: no path reaches elsewhere
    if name not in STATIC_FILES:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-store"})
