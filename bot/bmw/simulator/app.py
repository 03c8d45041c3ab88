"""The simulator's HTTP face: the BMW i Remote API routes and the `/_sim/` control surface, behind the
fault-injecting `Gate` (faults.py). The app holds the simulator and calls its parts; it keeps no state.

`Simulator.app` is this Starlette app: serve it over loopback with `bot.servers.BackgroundServer`, or call it
in-process through `httpx.ASGITransport`. Every path answers with and without a trailing slash, as
clients of the time used both.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.bmw.simulator.accounts import OAuthError
from bot.bmw.simulator.bodies import ApiError, error_response, parse_form
from bot.bmw.simulator.car import SERVICE_MODES
from bot.bmw.simulator.faults import Fault, Gate

if TYPE_CHECKING:
    from bot.bmw.simulator.state import Simulator

Endpoint = Callable[[Request], Awaitable[Response]]
VEHICLE = "/webapi/v1/user/vehicles/{vin}"


def simulator_app(sim: Simulator) -> Starlette:
    """The Starlette app serving `sim`: API routes behind the `Gate` (faults, request log), and `/_sim/`."""
    return Starlette(
        routes=_Http(sim).routes(),
        middleware=[Middleware(Gate, accounts=sim.accounts, faults=sim.faults, log=sim.log)],
        exception_handlers={HTTPException: _http_error},
    )


class _Http:
    """The route handlers; they hold the simulator they serve and leave its state to it."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        def vin_get(body_of: Callable[[str, str], dict[str, Any]]) -> Endpoint:
            async def handler(request: Request, username: str) -> Response:
                return JSONResponse(body_of(username, request.path_params["vin"]))

            return self._api(handler)

        return [
            *_both("/webapi/oauth/token", self._http_token, "POST"),
            *_both("/webapi/v1/user/vehicles", self._api(self._http_vehicles), "GET"),
            *_both(VEHICLE + "/status", vin_get(self.sim.bodies.status_body), "GET"),
            *_both(VEHICLE + "/statistics/lastTrip", vin_get(self.sim.bodies.last_trip_body), "GET"),
            *_both(VEHICLE + "/statistics/allTrips", vin_get(self.sim.bodies.all_trips_body), "GET"),
            *_both(VEHICLE + "/chargingprofile", vin_get(self.sim.bodies.charging_profile_body), "GET"),
            *_both(VEHICLE + "/destinations", vin_get(self.sim.bodies.destinations_body), "GET"),
            *_both(VEHICLE + "/rangemap", vin_get(self.sim.bodies.range_map_body), "GET"),
            *_both(VEHICLE + "/serviceExecutionStatus", self._api(self._http_service_status), "GET"),
            *_both(VEHICLE + "/executeService", self._api(self._http_execute_service), "POST"),
            *_both(VEHICLE + "/sendpoi", self._api(self._http_send_poi), "POST"),
            *_both("/_sim/state", self._control(self._sim_state), "GET"),
            *_both("/_sim/accounts", self._control(self._sim_accounts), "POST"),
            *_both("/_sim/vehicles/{vin}", self._control(self._sim_patch_vehicle), "PATCH"),
            *_both("/_sim/vehicles/{vin}/plug", self._control(self._sim_plug), "POST"),
            *_both("/_sim/vehicles/{vin}/unplug", self._control(self._sim_unplug), "POST"),
            *_both("/_sim/advance", self._control(self._sim_advance), "POST"),
            *_both("/_sim/tokens/expire", self._control(self._sim_expire_tokens), "POST"),
            *_both("/_sim/tokens/revoke", self._control(self._sim_revoke_tokens), "POST"),
            *_both("/_sim/faults", self._control(self._sim_add_fault), "POST"),
            *_both("/_sim/faults", self._control(self._sim_clear_faults), "DELETE"),
            *_both("/_sim/requests", self._control(self._sim_requests), "GET"),
        ]

    # -- the API -----------------------------------------------------------------------------------------

    async def _http_token(self, request: Request) -> Response:
        form = parse_form(await request.body())
        try:
            self.sim.accounts.check_client(*_basic_credentials(request.headers.get("authorization")))
            return JSONResponse(self.sim.accounts.issue_token(form), headers={"Cache-Control": "no-store"})
        except OAuthError as exc:
            return JSONResponse(exc.body(), exc.code)

    def _api(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
        """Bearer-protected endpoint: `handler(request, username)`, API errors as their JSON bodies."""

        async def endpoint(request: Request) -> Response:
            try:
                username = self.sim.accounts.authenticate(request.headers.get("authorization"))
                return await handler(request, username)
            except OAuthError as exc:
                challenge = (
                    f'Bearer realm="oauth", error="{exc.error}", error_description="{exc.description}"'
                )
                return JSONResponse(exc.body(), exc.code, headers={"WWW-Authenticate": challenge})
            except ApiError as exc:
                return JSONResponse(exc.body(), exc.code)

        return endpoint

    async def _http_vehicles(self, request: Request, username: str) -> Response:
        return JSONResponse(self.sim.bodies.vehicles_body(username))

    async def _http_service_status(self, request: Request, username: str) -> Response:
        vin, service_type = request.path_params["vin"], request.query_params.get("serviceType")
        return JSONResponse(self.sim.bodies.service_status_body(username, vin, service_type))

    async def _http_execute_service(self, request: Request, username: str) -> Response:
        form = parse_form(await request.body())
        return JSONResponse(self.sim.bodies.execute_service(username, request.path_params["vin"], form))

    async def _http_send_poi(self, request: Request, username: str) -> Response:
        self.sim.bodies.send_poi(username, request.path_params["vin"], parse_form(await request.body()))
        return Response(status_code=204)

    # -- /_sim/ control surface --------------------------------------------------------------------------

    def _control(self, handler: Callable[[Request, dict[str, Any]], Any]) -> Endpoint:
        """JSON in and out: `handler(request, body)` returns a payload or (status, payload).

        Changes come only as application/json, which a web page can send cross-site only after a CORS
        preflight this server never grants: a page in the operator's browser cannot steer the simulator
        with a form post or a no-cors fetch (those carry form, multipart, text or no content type).
        """

        async def endpoint(request: Request) -> Response:
            if request.method != "GET" and _media_type(request) != "application/json":
                return error_response(415, "Control requests must be JSON (Content-Type: application/json)")
            try:
                raw = await request.body()
                body = _json_object(raw) if raw.strip() else {}
                result = handler(request, body)
            except ApiError as exc:
                return JSONResponse(exc.body(), exc.code)
            status, payload = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(payload, status)

        return endpoint

    def _known_vin(self, request: Request) -> str:
        vin: str = request.path_params["vin"]
        try:
            self.sim.vehicle(vin)
        except KeyError as exc:
            raise ApiError(404, "Vehicle not found") from exc
        return vin

    def _sim_state(self, request: Request, body: dict[str, Any]) -> Any:
        return self.sim.snapshot()

    def _sim_accounts(self, request: Request, body: dict[str, Any]) -> Any:
        username, password, answer = body.get("username"), body.get("password"), body.get("security_answer")
        if not (isinstance(username, str) and username and isinstance(password, str) and password):
            raise ApiError(400, "username and password are required")
        if answer is not None and not isinstance(answer, str):
            raise ApiError(400, "security_answer must be a string")
        try:
            vins = self.sim.add_account(username, password, security_answer=answer)
        except ValueError as exc:
            raise ApiError(409, str(exc)) from exc
        return 201, {"username": username, "vins": vins}

    def _sim_patch_vehicle(self, request: Request, body: dict[str, Any]) -> Any:
        vin = self._known_vin(request)
        mode = body.pop("service_mode", None)
        if mode is not None and mode not in SERVICE_MODES:
            raise ApiError(400, f"service_mode must be one of {', '.join(SERVICE_MODES)}")
        if mode is not None:
            self.sim.vehicle(vin).service_mode = mode
        if body:
            self.sim.set_status(vin, **body)
        return self.sim.vehicle_view(vin)

    def _sim_plug(self, request: Request, body: dict[str, Any]) -> Any:
        vin = self._known_vin(request)
        charging = body.get("charging", True)
        if not isinstance(charging, bool):
            raise ApiError(400, "charging must be true or false")
        self.sim.plug_in(vin, charging=charging)
        return self.sim.vehicle_view(vin)

    def _sim_unplug(self, request: Request, body: dict[str, Any]) -> Any:
        vin = self._known_vin(request)
        self.sim.unplug(vin)
        return self.sim.vehicle_view(vin)

    def _sim_advance(self, request: Request, body: dict[str, Any]) -> Any:
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ApiError(400, "seconds must be a number >= 0")
        self.sim.advance(seconds)
        return {"now": self.sim.now()}

    def _sim_expire_tokens(self, request: Request, body: dict[str, Any]) -> Any:
        self.sim.expire_tokens(body.get("username"))
        return {"ok": True}

    def _sim_revoke_tokens(self, request: Request, body: dict[str, Any]) -> Any:
        self.sim.revoke_refresh_tokens(body.get("username"))
        return {"ok": True}

    def _sim_add_fault(self, request: Request, body: dict[str, Any]) -> Any:
        try:
            fault = Fault(**body)
        except (TypeError, ValueError, re.error) as exc:
            raise ApiError(400, f"invalid fault: {exc}") from exc
        self.sim.add_fault(fault)
        return 201, asdict(fault)

    def _sim_clear_faults(self, request: Request, body: dict[str, Any]) -> Any:
        self.sim.clear_faults()
        return {"ok": True}

    def _sim_requests(self, request: Request, body: dict[str, Any]) -> Any:
        return {"requests": self.sim.log.requests_json()}


def _both(path: str, endpoint: Endpoint, method: str) -> list[Route]:
    return [Route(path, endpoint, methods=[method]), Route(path + "/", endpoint, methods=[method])]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse(ApiError(exc.status_code, exc.detail).body(), exc.status_code, headers=exc.headers)


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    """(key, secret) from `Authorization: Basic ...`; ("", "") when absent or garbled."""
    scheme, _, encoded = (authorization or "").partition(" ")
    try:
        key, sep, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return (key, secret) if scheme.lower() == "basic" and sep else ("", "")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "body must be JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body
