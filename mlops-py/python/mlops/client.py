"""A small client for the Open Inference Protocol over HTTP (KServe v2): what ``mlops serve``,
``Server.serve``, KServe, Triton and MLServer answer. Standard library only; NumPy when the
inputs are arrays."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping, Optional

from .errors import (
    BackendError,
    Conflict,
    InvalidArgument,
    MlopsError,
    NotFound,
    PermissionDenied,
    TimedOut,
    Unavailable,
)

__all__ = ["InferenceClient"]

# NumPy dtype names → the protocol's datatypes.
_DATATYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
}
_DTYPES = {v: k for k, v in _DATATYPES.items()}


def _quote(segment: str) -> str:
    """A model name as one URL path segment."""
    return urllib.parse.quote(segment, safe="")


def _error_for(status: int) -> type[MlopsError]:
    """The exception of an HTTP error status."""
    if status in (400, 422):
        return InvalidArgument
    if status in (401, 403):
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status in (408, 504):
        return TimedOut
    if status in (429, 502, 503):
        return Unavailable
    return BackendError


def _encode(name: str, value: Any) -> dict[str, Any]:
    """One input tensor as the protocol's JSON."""
    import numpy as np

    array = np.asarray(value)
    if array.dtype.kind in "USO":
        data = [x.decode() if isinstance(x, bytes) else str(x) for x in array.ravel().tolist()]
        datatype = "BYTES"
    elif array.dtype.name in _DATATYPES:
        data = array.ravel().tolist()
        datatype = _DATATYPES[array.dtype.name]
    else:
        raise InvalidArgument(f"input {name!r} has dtype {array.dtype}, which the protocol lacks")
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def _decode(output: Mapping[str, Any]) -> Any:
    """One output tensor as a NumPy array of its shape."""
    import numpy as np

    shape = tuple(output.get("shape", []))
    datatype = output.get("datatype", "")
    if datatype == "BYTES":
        return np.array(output["data"], dtype=object).reshape(shape)
    return np.asarray(output["data"], dtype=_DTYPES.get(datatype, "float64")).reshape(shape)


class InferenceClient:
    """Calls a server speaking the Open Inference Protocol over HTTP.

    >>> client = InferenceClient("http://127.0.0.1:8080")   # doctest: +SKIP
    >>> client.infer("churn", {"tenure_months": [3.0], "plan": ["pro"]})   # doctest: +SKIP
    {'label': array([ True]), 'probabilities': array([[0.2, 0.8]])}
    """

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            try:
                message = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                message = detail
            raise _error_for(e.code)(f"{method} {path}: HTTP {e.code}: {message}") from None
        except (TimeoutError, socket.timeout) as e:
            raise TimedOut(f"{method} {self.url}{path}: no answer in {self.timeout} s") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise TimedOut(f"{method} {self.url}{path}: no answer in {self.timeout} s") from e
            raise Unavailable(f"{method} {self.url}{path}: {e.reason}") from e
        except OSError as e:
            raise Unavailable(f"{method} {self.url}{path}: {e}") from e
        return json.loads(text) if text else None

    def live(self) -> bool:
        """Whether the server answers. A refused token raises ``PermissionDenied``."""
        try:
            self._call("GET", "/v2/health/live")
            return True
        except PermissionDenied:
            raise
        except MlopsError:
            return False

    def ready(self, model: Optional[str] = None) -> bool:
        """Whether the server (or one model) is ready. A refused token raises
        ``PermissionDenied``."""
        path = "/v2/health/ready" if model is None else f"/v2/models/{_quote(model)}/ready"
        try:
            self._call("GET", path)
            return True
        except PermissionDenied:
            raise
        except MlopsError:
            return False

    def metadata(self, model: str) -> dict[str, Any]:
        """A model's metadata: versions, platform, inputs and outputs."""
        result: dict[str, Any] = self._call("GET", f"/v2/models/{_quote(model)}")
        return result

    def infer(
        self,
        model: str,
        inputs: Mapping[str, Any],
        version: Optional[int] = None,
        parameters: Optional[Mapping[str, Any]] = None,
    ) -> dict[str, Any]:
        """Runs ``model`` on ``{input name: array-like}``; returns ``{output name: array}``."""
        body: dict[str, Any] = {"inputs": [_encode(k, v) for k, v in inputs.items()]}
        if parameters:
            body["parameters"] = dict(parameters)
        path = (
            f"/v2/models/{_quote(model)}"
            + (f"/versions/{version}" if version is not None else "")
            + "/infer"
        )
        response = self._call("POST", path, body)
        return {o["name"]: _decode(o) for o in response.get("outputs", [])}
