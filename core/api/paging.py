"""Opaque, signed cursors for keyset paging: ``(created_at, id)`` as base64 JSON plus an HMAC.

A client cannot forge or edit a cursor (it would page from a place the API never gave
out): anything that does not verify is a 422, never a 500 or a silent restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import datetime

from core.domain.errors import ValidationError
from core.domain.ports import ExperimentKey

_TAMPERED = "cursor: not a cursor this API gave out; start again without one"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Cursors:
    def __init__(self, secret: bytes):
        self._key = hashlib.sha256(b"phoenix-api-cursor\x00" + secret).digest()

    def _mac(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[:16])

    def _encode(self, kind: str, *values: object) -> str:
        payload = json.dumps([kind, *values], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{self._mac(payload)}"

    def _decode(self, kind: str, cursor: str) -> list[object]:
        body, dot, mac = cursor.partition(".")
        try:
            payload = _unb64(body)
        except (binascii.Error, ValueError):
            raise ValidationError(_TAMPERED) from None
        if not dot or not hmac.compare_digest(mac, self._mac(payload)):
            raise ValidationError(_TAMPERED)
        values = json.loads(payload)  # signed by us: the shape is ours
        if values[0] != kind:  # a cursor of another listing
            raise ValidationError(_TAMPERED)
        return list(values[1:])

    def encode(self, key: ExperimentKey) -> str:
        """The cursor of an experiment listing's next page."""
        return self._encode("experiments", key[0].isoformat(), key[1])

    def decode(self, cursor: str) -> ExperimentKey:
        at, experiment_id = self._decode("experiments", cursor)
        return datetime.fromisoformat(str(at)), str(experiment_id)

    def encode_audit(self, before: int) -> str:
        return self._encode("audit", before)

    def decode_audit(self, cursor: str) -> int:
        (before,) = self._decode("audit", cursor)
        return int(str(before))
