"""A Google Cloud Storage test double that honours generation preconditions.

gcp-storage-emulator serves the JSON API well enough for gcsfs, but it ignores the conditions
that make GCS writes safe (`ifGenerationMatch`, `ifGenerationNotMatch`, `ifMetagenerationMatch`,
`ifMetagenerationNotMatch`, their `ifSource…` forms, `generation`), sends no `x-goog-generation`
header with an object's bytes, ignores a listing's `startOffset`/`endOffset`, and serves one
connection at a time. TensorStore (Orbax's OCDBT checkpoints) reads an object's generation from
that header (missing: 0, no valid generation) and writes the next version only if the generation
still matches, so against the bare emulator a checkpoint's manifest rewrite fails now and then
("Malformed StorageGeneration").

This module keeps the emulator's storage and handlers and adds, as GCS documents them
(https://cloud.google.com/storage/docs/request-preconditions):
- every condition is checked, atomically with the request (one request at a time holds the store;
  connections are accepted by a thread each): 412 when it fails, 304 for a read whose
  `…NotMatch` condition fails, 404 for a read of a generation that is not the live one;
- each write gets a generation larger than every earlier one, and metageneration 1;
- media responses carry `x-goog-generation`, `x-goog-metageneration` and
  `x-goog-stored-content-length`;
- listings honour `startOffset` and `endOffset`.

Run it as `python tests/gcs_double.py PORT BUCKET`; it serves on 127.0.0.1 until terminated.
`SSD_JAX_GCS_DOUBLE_IGNORE=ifGenerationMatch` (a comma-separated list of conditions, or `generation`)
makes it ignore those, as the bare emulator does: tests/test_gcs.py run with it set must fail.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus, server

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import buckets, objects
from gcp_storage_emulator.storage import Storage

IGNORED = frozenset(filter(None, os.environ.get("SSD_JAX_GCS_DOUBLE_IGNORE", "").split(",")))
_store_lock = threading.Lock()  # one request at a time reads and changes the store


class _Generations:
    """Strictly increasing object generations (the emulator takes the clock's nanoseconds, which
    two writes in one tick would share)."""

    def __init__(self):
        self._last = 0

    def next(self, proposed: int) -> int:
        self._last = max(self._last + 1, proposed)
        return self._last


_generations = _Generations()
_make_object_resource = objects._make_object_resource


def _object_resource_with_fresh_generation(*args, **kwargs) -> dict:
    """A new object version: the next generation, metageneration 1 (the emulator counts the
    metadata an upload carries as a first patch)."""
    resource = _make_object_resource(*args, **kwargs)
    old = resource["generation"]
    new = str(_generations.next(int(old)))
    resource["generation"], resource["metageneration"] = new, "1"
    resource["id"] = resource["id"].removesuffix(old) + new
    resource["mediaLink"] = resource["mediaLink"].replace(f"generation={old}", f"generation={new}")
    return resource


def _live(storage: Storage, bucket: str, name: str | None) -> dict | None:
    if not bucket or not name:
        return None
    try:
        return storage.get_file_obj(bucket, name)
    except NotFound:
        return None


# Each condition: the object field it compares, and whether it requires equality.
CONDITIONS = {"ifGenerationMatch": ("generation", True), "ifGenerationNotMatch": ("generation", False),
              "ifMetagenerationMatch": ("metageneration", True),
              "ifMetagenerationNotMatch": ("metageneration", False)}


def _condition_holds(field: str, equal: bool, expected: int, live: dict | None) -> bool:
    """GCS's rule for one condition; a generation of 0 stands for "no live object"."""
    if field == "generation" and expected == 0:
        return (live is None) == equal
    if live is None:
        return not equal
    return (int(live[field]) == expected) == equal


def _failed_precondition(query: dict, live: dict | None, source: dict | None, is_read: bool) -> HTTPStatus | None:
    """The status GCS answers when a condition of `query` fails for the live object (or the
    source object, for the `ifSource…` forms); None when they all hold."""
    for condition, (field, equal) in CONDITIONS.items():
        if condition in IGNORED:
            continue
        for name, target in ((condition, live), ("ifSource" + condition[2:], source)):
            if name not in query:
                continue
            try:
                expected = int(query[name][0])
            except ValueError:
                return HTTPStatus.BAD_REQUEST
            if not _condition_holds(field, equal, expected, target):
                not_modified = is_read and not equal and target is not None
                return HTTPStatus.NOT_MODIFIED if not_modified else HTTPStatus.PRECONDITION_FAILED
    return None


def _upload_target(request, storage: Storage) -> str | None:
    """The object an upload request writes."""
    if "upload_id" in request.query:
        try:
            return storage.get_resumable_file_obj(request.query["upload_id"][0])["name"]
        except NotFound:
            return None
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data
    if isinstance(data, dict):
        return (data.get("meta") or data).get("name")
    return None


def _with_preconditions(handler: Callable, target: Callable, source: Callable | None = None,
                        is_read: bool = False) -> Callable:
    """`handler`, run only when the request's conditions hold for the object `target(request,
    storage)` names (and, for copies, `source`); media responses get generation headers."""

    @functools.wraps(handler)
    def checked(request, response, storage, *args, **kwargs):
        bucket = request.params.get("dest_bucket_name") or request.params.get("bucket_name")
        live = _live(storage, bucket, target(request, storage))
        source_object = _live(storage, request.params.get("bucket_name"), source(request)) if source else None
        failure = _failed_precondition(request.query, live, source_object, is_read)
        if failure is None and is_read and "generation" in request.query and "generation" not in IGNORED:
            if live is None or live["generation"] != request.query["generation"][0]:
                failure = HTTPStatus.NOT_FOUND
        if failure is not None:
            response.status = failure
            return None
        result = handler(request, response, storage, *args, **kwargs)
        if is_read and live is not None and response.status in (HTTPStatus.OK, HTTPStatus.PARTIAL_CONTENT):
            response["x-goog-generation"] = live["generation"]
            response["x-goog-metageneration"] = live["metageneration"]
            response["x-goog-stored-content-length"] = str(live["size"])
        return result

    return checked


def _listing_in_range(handler: Callable) -> Callable:
    """`objects.ls` keeping only names in [startOffset, endOffset), as GCS does."""

    @functools.wraps(handler)
    def listed(request, response, storage, *args, **kwargs):
        handler(request, response, storage, *args, **kwargs)
        start = request.query.get("startOffset", [""])[0]
        end = request.query.get("endOffset", [None])[0]
        if response.status == HTTPStatus.OK and (start or end):
            listing = json.loads(response._content)
            listing["items"] = [item for item in listing["items"]
                                if item["name"] >= start and (end is None or item["name"] < end)]
            response.json(listing)

    return listed


def _object_id(request, storage=None) -> str | None:
    return request.params.get("object_id")


def _destination_id(request, storage) -> str | None:
    return request.params.get("dest_object_id")


def _install() -> None:
    """Wraps the emulator's object handlers in its routing table."""
    objects._make_object_resource = _object_resource_with_fresh_generation
    wrapped = {
        objects.get: _with_preconditions(objects.get, _object_id, is_read=True),
        objects.download: _with_preconditions(objects.download, _object_id, is_read=True),
        objects.delete: _with_preconditions(objects.delete, _object_id),
        objects.patch: _with_preconditions(objects.patch, _object_id),
        objects.insert: _with_preconditions(objects.insert, _upload_target),
        objects.upload_partial: _with_preconditions(objects.upload_partial, _upload_target),
        objects.xml_upload: _with_preconditions(objects.xml_upload, _object_id),
        objects.compose: _with_preconditions(objects.compose, _object_id),
        objects.copy: _with_preconditions(objects.copy, _destination_id, _object_id),
        objects.rewrite: _with_preconditions(objects.rewrite, _destination_id, _object_id),
        objects.ls: _listing_in_range(objects.ls),
    }
    for _, methods in emulator.HANDLERS:
        for method, handler in methods.items():
            methods[method] = wrapped.get(handler, handler)


class _RequestHandler(emulator.RequestHandler):
    """The emulator's request handler, one request at a time on the store."""

    def _route(self, method: str) -> None:
        with _store_lock:
            emulator.Router(self).handle(method)

    def do_GET(self):
        self._route(emulator.GET)

    def do_POST(self):
        self._route(emulator.POST)

    def do_PUT(self):
        self._route(emulator.PUT)

    def do_DELETE(self):
        self._route(emulator.DELETE)

    def do_PATCH(self):
        self._route(emulator.PATCH)


class _Server(server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # TensorStore opens many connections at once

    def handle_error(self, request, client_address) -> None:
        """A client that hung up before its answer (gcsfs asks for an object and a listing at
        once and drops the slower) is no error of the store's; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(port: int, bucket: str) -> None:
    _install()
    storage = Storage(use_memory_fs=True)
    buckets.create_bucket(bucket, storage)
    _Server(("127.0.0.1", port), functools.partial(_RequestHandler, storage)).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
