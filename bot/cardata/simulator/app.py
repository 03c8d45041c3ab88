"""The CarData simulator's HTTP face: OAuth under /gcdm/oauth, the REST API under /customers, `/_sim/`.

One Starlette app serves both of BMW's hosts, so a client points CARDATA_AUTH_URL at `<url>/gcdm/oauth`
and CARDATA_API_URL at `<url>`. Serve it with `bot.servers.BackgroundServer` (or `httpx.ASGITransport`);
the MQTT broker (broker.py) runs beside it on the same state.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.bmw.simulator import Fault
from bot.cardata.simulator import fleet
from bot.cardata.simulator.oauth import POLL_INTERVAL
from bot.cardata.simulator.state import CardataState
from bot.cardata.simulator.stream import STREAM_LINGER
from bot.cardata.simulator.wire import OAuthError, RestError

Endpoint = Callable[[Request], Awaitable[Response]]
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
VEHICLE = "/customers/vehicles/{vin}"


class SimError(Exception):
    """A control-surface refusal: HTTP `status` with `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class CardataSimulator(CardataState):
    """The simulated BMW CarData service: all state (see CardataState) plus `app`, its ASGI face.

    `CardataSimulator()` then `.add_default_account()` gives DEFAULT_CLIENT_ID / DEFAULT_GCID with an i3
    BEV and an i3 REX; `CardataBroker(sim)` (broker.py) adds the MQTT stream.
    """

    def __init__(
        self,
        *,
        charge_percent_per_minute: float = 1.0,
        auto_approve_seconds: float | None = None,
        daily_quota: int = 50,
        poll_interval: int = POLL_INTERVAL,
        stream_linger: float = STREAM_LINGER,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            charge_percent_per_minute=charge_percent_per_minute,
            auto_approve_seconds=auto_approve_seconds,
            daily_quota=daily_quota,
            poll_interval=poll_interval,
            stream_linger=stream_linger,
            clock=clock,
        )
        self.app = Starlette(routes=self._routes())

    def _routes(self) -> list[Route]:
        def vin_get(body_of: Callable[[str, Request], Any]) -> Endpoint:
            async def handler(request: Request, gcid: str) -> Any:
                return body_of(gcid, request)

            return self._api(handler)

        return [
            Route("/gcdm/oauth/device/code", self._oauth(self.device_code), methods=["POST"]),
            Route("/gcdm/oauth/token", self._oauth(lambda form, _: self.token(form)), methods=["POST"]),
            Route("/oneid/link", self._link_page, methods=["GET"]),
            Route("/customers/vehicles/mappings", self._api(self._http_mappings), methods=["GET"]),
            Route("/customers/containers", self._api(self._http_create_container), methods=["POST"]),
            Route("/customers/containers", self._api(self._http_containers), methods=["GET"]),
            Route("/customers/containers/{cid}", self._api(self._http_container), methods=["GET"]),
            Route("/customers/containers/{cid}", self._api(self._http_delete_container), methods=["DELETE"]),
            Route(
                VEHICLE + "/telematicData",
                vin_get(
                    lambda gcid, r: self.telematic_data(
                        gcid, r.path_params["vin"], r.query_params.get("containerId")
                    )
                ),
                methods=["GET"],
            ),
            Route(
                VEHICLE + "/chargingHistory",
                vin_get(
                    lambda gcid, r: self.charging_history(
                        gcid,
                        r.path_params["vin"],
                        r.query_params.get("from"),
                        r.query_params.get("to"),
                        r.query_params.get("nextToken"),
                    )
                ),
                methods=["GET"],
            ),
            Route(
                VEHICLE + "/basicData",
                vin_get(lambda gcid, r: self.basic_data(gcid, r.path_params["vin"])),
                methods=["GET"],
            ),
            Route("/_sim/state", self._control(lambda r, b: self.snapshot()), methods=["GET"]),
            Route(
                "/_sim/requests",
                self._control(lambda r, b: {"requests": self.requests_json()}),
                methods=["GET"],
            ),
            Route("/_sim/messages", self._control(self._sim_messages), methods=["GET"]),
            Route("/_sim/accounts", self._control(self._sim_accounts), methods=["POST"]),
            Route("/_sim/faults", self._control(self._sim_add_fault), methods=["POST"]),
            Route("/_sim/faults", self._control(self._sim_clear_faults), methods=["DELETE"]),
            Route("/_sim/approve", self._control(self._sim_decide("approved")), methods=["POST"]),
            Route("/_sim/deny", self._control(self._sim_decide("denied")), methods=["POST"]),
            Route("/_sim/advance", self._control(self._sim_advance), methods=["POST"]),
            Route("/_sim/connections/drop", self._control(self._sim_drop), methods=["POST"]),
            Route("/_sim/stream/hold", self._control(self._sim_hold), methods=["POST"]),
            Route("/_sim/stream/release", self._control(self._sim_release), methods=["POST"]),
            Route("/_sim/stream/unconfigure", self._control(self._sim_unconfigure), methods=["POST"]),
            Route("/_sim/stream/configure", self._control(self._sim_configure), methods=["POST"]),
            Route("/_sim/tokens/expire", self._control(self._sim_expire), methods=["POST"]),
            Route("/_sim/tokens/revoke", self._control(self._sim_revoke), methods=["POST"]),
            Route("/_sim/quota/spend", self._control(self._sim_spend), methods=["POST"]),
            Route("/_sim/vehicles/{vin}/plug", self._vehicle(self._sim_plug), methods=["POST"]),
            Route(
                "/_sim/vehicles/{vin}/unplug", self._vehicle(lambda v, b: self.unplug(v)), methods=["POST"]
            ),
            Route(
                "/_sim/vehicles/{vin}/charge",
                self._vehicle(lambda v, b: self.start_charging(v)),
                methods=["POST"],
            ),
            Route("/_sim/vehicles/{vin}/finish", self._vehicle(self._sim_finish), methods=["POST"]),
            Route("/_sim/vehicles/{vin}/flap", self._vehicle(self._sim_flap), methods=["POST"]),
            Route("/_sim/vehicles/{vin}/soc", self._vehicle(self._sim_soc), methods=["POST"]),
            Route("/_sim/vehicles/{vin}/lock", self._vehicle(self._sim_lock), methods=["POST"]),
            Route(
                "/_sim/vehicles/{vin}/unlock",
                self._vehicle(lambda v, b: self.set_locked(v, False)),
                methods=["POST"],
            ),
            Route("/_sim/vehicles/{vin}/move", self._vehicle(self._sim_move), methods=["POST"]),
            Route("/_sim/vehicles/{vin}/window", self._vehicle(self._sim_window), methods=["POST"]),
            Route(
                "/_sim/vehicles/{vin}/switch-off",
                self._vehicle(lambda v, b: self.switch_off(v)),
                methods=["POST"],
            ),
            Route("/_sim/vehicles/{vin}/kind", self._vehicle(self._sim_kind), methods=["POST"]),
            Route(
                "/_sim/vehicles/{vin}/lose-burst",
                self._vehicle(lambda v, b: self.lose_next_burst(v)),
                methods=["POST"],
            ),
        ]

    # -- OAuth and REST ----------------------------------------------------------------------------------

    def _oauth(self, handler: Callable[[dict[str, str], str], dict[str, Any]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            gcid = self.requester(None, form)
            try:
                await self._fault(request)
                body, status = handler(form, str(request.base_url).rstrip("/")), 200
            except OAuthError as exc:
                body, status = exc.body(), exc.status
            except RestError as exc:
                body, status = exc.body(), exc.status
            self.record(request.method, request.url.path, {}, form, gcid, status)
            return JSONResponse(body, status, headers={"Cache-Control": "no-store"})

        return endpoint

    def _api(self, handler: Callable[[Request, str], Awaitable[Any]]) -> Endpoint:
        """`x-version: v1` and a Bearer token, one call off the owner's daily quota; errors as exve bodies."""

        async def endpoint(request: Request) -> Response:
            authorization = request.headers.get("authorization")
            gcid = self.requester(authorization, {})
            try:
                await self._fault(request)
                if request.headers.get("x-version") != "v1":
                    raise RestError(400, "CU-400", "Bad Request", "header x-version: v1 is required")
                gcid = self.authenticate(authorization)
                result = await handler(request, gcid)
                status, body = result if isinstance(result, tuple) else (200, result)
                response = Response(status_code=204) if body is None else JSONResponse(body, status)
            except RestError as exc:
                response = JSONResponse(exc.body(), exc.status)
            self.record(
                request.method, request.url.path, dict(request.query_params), {}, gcid, response.status_code
            )
            return response

        return endpoint

    async def _fault(self, request: Request) -> None:
        """Apply the first fault matching this request: raise its error, or wait and go on."""
        fault = self.take_fault(request.method, request.url.path)
        if fault is None:
            return
        if fault.kind != "error":
            await anyio.sleep(fault.delay)
        if fault.kind == "timeout":
            raise RestError(504, "CU-504", "Gateway Timeout", "simulated fault")
        if fault.kind == "error":
            raise RestError(fault.status, f"CU-{fault.status}", "Simulated server fault", "simulated fault")

    async def _http_mappings(self, request: Request, gcid: str) -> Any:
        return self.mappings(gcid)

    async def _http_create_container(self, request: Request, gcid: str) -> Any:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            raise RestError(400, "CU-400", "Bad Request", "the body must be JSON") from exc
        if not isinstance(body, dict):
            raise RestError(400, "CU-400", "Bad Request", "the body must be a JSON object")
        return 201, self.create_container(gcid, body)

    async def _http_containers(self, request: Request, gcid: str) -> Any:
        return self.containers(gcid)

    async def _http_container(self, request: Request, gcid: str) -> Any:
        return self.container(gcid, request.path_params["cid"])

    async def _http_delete_container(self, request: Request, gcid: str) -> Any:
        self.delete_container(gcid, request.path_params["cid"])
        return 204, None

    async def _link_page(self, request: Request) -> Response:
        """The portal page the verification URL opens: it only says how the simulator approves."""
        code = request.query_params.get("user_code", "")
        text = "Simulated BMW login. Approve with POST /_sim/approve {&quot;user_code&quot;: ...}"
        if code.isalnum():
            text += f" (user code {code})"
        return HTMLResponse(f"<!doctype html><title>CarData simulator</title><p>{text}</p>")

    # -- /_sim/ control surface --------------------------------------------------------------------------

    def _control(self, handler: Callable[[Request, dict[str, Any]], Any]) -> Endpoint:
        """Loopback only, JSON in (else 415) and out: `handler` returns a payload or (status, payload)."""

        async def endpoint(request: Request) -> Response:
            try:
                if request.client is None or request.client.host not in LOOPBACK:
                    raise SimError(403, "the control surface answers loopback clients only")
                body: dict[str, Any] = {}
                raw = await request.body()
                if request.method == "POST" or raw.strip():  # a bodiless GET or DELETE needs no type
                    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
                    if media != "application/json":
                        raise SimError(415, "the control surface takes application/json only")
                    parsed = json.loads(raw) if raw.strip() else {}
                    if not isinstance(parsed, dict):
                        raise SimError(400, "the body must be a JSON object")
                    body = parsed
                result = handler(request, body)
            except SimError as exc:
                return JSONResponse({"error": exc.message}, exc.status)
            except json.JSONDecodeError:
                return JSONResponse({"error": "the body must be JSON"}, 400)
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
            status, payload = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(payload, status)

        return endpoint

    def _vehicle(self, action: Callable[[str, dict[str, Any]], None]) -> Endpoint:
        """A car control: 404 for an unknown VIN; answers the car's current values."""

        def handler(request: Request, body: dict[str, Any]) -> Any:
            vin = request.path_params["vin"]
            try:
                self.car(vin)
            except KeyError as exc:
                raise SimError(404, "no such vehicle") from exc
            action(vin, body)
            return self.vehicle_view(vin)

        return self._control(handler)

    def vehicle_view(self, vin: str) -> dict[str, Any]:
        with self._lock:
            car = self.car(vin)
            return {
                "vin": vin,
                "kind": car.kind,
                "soc": round(car.soc, 3),
                "target": car.target,
                "values": {key: value for key, (value, _, _) in car.values.items()},
            }

    def _sim_messages(self, request: Request, body: dict[str, Any]) -> Any:
        return {"messages": [m.payload() for m in self.published]}

    def _sim_accounts(self, request: Request, body: dict[str, Any]) -> Any:
        client_id, gcid, vins = body.get("client_id"), body.get("gcid"), body.get("vins")
        kind = body.get("kind", "quiet")
        if kind not in fleet.CAR_KINDS:
            raise SimError(400, f"kind must be one of {', '.join(fleet.CAR_KINDS)}")
        if not (isinstance(client_id, str) and client_id):
            raise SimError(400, "client_id is required")
        if gcid is not None and not (isinstance(gcid, str) and gcid):
            raise SimError(400, "gcid must be a string")
        if vins is not None and not (
            isinstance(vins, list) and vins and all(isinstance(v, str) and len(v) == 17 for v in vins)
        ):
            raise SimError(400, "vins must list 17-character VINs")
        try:
            gcid, vins = self.add_account(client_id, gcid, vins=vins)
        except ValueError as exc:
            raise SimError(409, str(exc)) from exc
        for vin in vins:
            self.set_kind(vin, kind)
        return 201, {"client_id": client_id, "gcid": gcid, "vins": vins}

    def _sim_add_fault(self, request: Request, body: dict[str, Any]) -> Any:
        fault = Fault(**body)  # TypeError / ValueError / re.error (a ValueError): 400
        self.add_fault(fault)
        return 201, asdict(fault)

    def _sim_clear_faults(self, request: Request, body: dict[str, Any]) -> Any:
        self.clear_faults()
        return {"ok": True}

    def _sim_decide(self, decision: Any) -> Callable[[Request, dict[str, Any]], Any]:
        def handler(request: Request, body: dict[str, Any]) -> Any:
            user_code = body.get("user_code")
            if not isinstance(user_code, str):
                raise SimError(400, "user_code is required")
            try:
                self.decide(user_code, decision)
            except ValueError as exc:
                raise SimError(404, str(exc)) from exc
            return {"user_code": user_code, "decision": decision}

        return handler

    def _sim_advance(self, request: Request, body: dict[str, Any]) -> Any:
        self.advance(_number(body, "seconds"))
        return {"now": self.now()}

    def _sim_drop(self, request: Request, body: dict[str, Any]) -> Any:
        self.drop_connections(_gcid(body))
        return {"ok": True}

    def _sim_hold(self, request: Request, body: dict[str, Any]) -> Any:
        self.hold_stream(_required_gcid(body))
        return {"ok": True}

    def _sim_release(self, request: Request, body: dict[str, Any]) -> Any:
        self.release_stream(_required_gcid(body))
        return {"ok": True}

    def _sim_unconfigure(self, request: Request, body: dict[str, Any]) -> Any:
        self.unconfigure_stream(_required_gcid(body))
        return {"ok": True}

    def _sim_configure(self, request: Request, body: dict[str, Any]) -> Any:
        self.configure_stream(_required_gcid(body))
        return {"ok": True}

    def _sim_expire(self, request: Request, body: dict[str, Any]) -> Any:
        self.expire_tokens(_gcid(body))
        return {"ok": True}

    def _sim_revoke(self, request: Request, body: dict[str, Any]) -> Any:
        self.revoke_refresh_tokens(_gcid(body))
        return {"ok": True}

    def _sim_spend(self, request: Request, body: dict[str, Any]) -> Any:
        gcid, calls = body.get("gcid"), body.get("calls")
        if calls is not None and (not isinstance(calls, int) or isinstance(calls, bool) or calls < 0):
            raise SimError(400, "calls must be a whole number >= 0")
        try:
            left = self.spend_quota(gcid if isinstance(gcid, str) else "", calls)
        except KeyError as exc:
            raise SimError(404, "no such gcid") from exc
        return {"gcid": gcid, "calls_left": left}

    def _sim_plug(self, vin: str, body: dict[str, Any]) -> None:
        charging = body.get("charging", True)
        if not isinstance(charging, bool):
            raise SimError(400, "charging must be true or false")
        self.plug_in(vin, charging=charging)

    def _sim_finish(self, vin: str, body: dict[str, Any]) -> None:
        status = body.get("status", "CHARGINGENDED")
        reason = body.get("reason", "END_REQUESTED_BY_DRIVER")
        if status not in fleet.CHARGING_STATES or not isinstance(reason, str):
            raise SimError(400, f"status must be one of {', '.join(fleet.CHARGING_STATES)}; reason a string")
        self.finish_charging(vin, status=status, reason=reason)

    def _sim_flap(self, vin: str, body: dict[str, Any]) -> None:
        self.flap(vin, _number(body, "seconds", 5.0))

    def _sim_soc(self, vin: str, body: dict[str, Any]) -> None:
        target = body.get("target")
        if target is not None and (not isinstance(target, int) or isinstance(target, bool)):
            raise SimError(400, "target must be a whole percent")
        self.set_soc(vin, _number(body, "soc"), target)

    def _sim_lock(self, vin: str, body: dict[str, Any]) -> None:
        state = body.get("state")
        if state is not None and state not in fleet.DOOR_STATES:
            raise SimError(400, f"state must be one of {', '.join(fleet.DOOR_STATES)}")
        self.set_locked(vin, True, state)

    def _sim_window(self, vin: str, body: dict[str, Any]) -> None:
        which, state = body.get("window"), body.get("state", "OPEN")
        if not isinstance(which, str) or not isinstance(state, str):
            raise SimError(400, "window and state must be strings")
        self.set_window(vin, which, state)

    def _sim_kind(self, vin: str, body: dict[str, Any]) -> None:
        kind = body.get("kind")
        if kind not in fleet.CAR_KINDS:
            raise SimError(400, f"kind must be one of {', '.join(fleet.CAR_KINDS)}")
        self.set_kind(vin, kind)

    def _sim_move(self, vin: str, body: dict[str, Any]) -> None:
        heading = body.get("heading")
        if heading is not None and (not isinstance(heading, int) or isinstance(heading, bool)):
            raise SimError(400, "heading must be whole degrees")
        self.move(vin, _number(body, "lat"), _number(body, "lon"), heading)


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SimError(400, f"{key} must be a number")
    return float(value)


def _required_gcid(body: dict[str, Any]) -> str:
    gcid = _gcid(body)
    if gcid is None:
        raise SimError(400, "gcid is required")
    return gcid


def _gcid(body: dict[str, Any]) -> str | None:
    gcid = body.get("gcid")
    if gcid is not None and not isinstance(gcid, str):
        raise SimError(400, "gcid must be a string")
    return gcid
