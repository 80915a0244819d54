"""Epoch checkpoints on disk: written whole or not at all, checked when read, a full disk named.

A checkpoint is what a retried trial resumes from, so a bad one must never cost the trial:

- written to ``<name>.tmp`` first, flushed to the disk, then renamed over the old one, so a
  kill or a crash leaves either the old checkpoint or the new one;
- serialized in memory before the file is opened, so a write that runs out of space fails
  with the operating system's own ``ENOSPC`` (torch's writer reports it as an unrelated
  "unexpected pos") and its partial file is removed at once: :class:`DiskFull`;
- checked when read: a file that does not load (cut short by a full disk, zeroed by a
  crashed file system) or whose content does not match the checksum stored in it is set
  aside (renamed ``*.corrupt-<time>``, logged) and the caller starts from scratch.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from hourglass.errors import HourglassError

__all__ = ["save_checkpoint", "load_checkpoint", "DiskFull", "EXIT_DISK_FULL", "CHECKSUM_KEY"]

CHECKSUM_KEY = "sha256"  # the state's checksum, stored in the checkpoint itself
EXIT_DISK_FULL = 74  # EX_IOERR: this machine's disk is full; another worker may have room
_log = logging.getLogger("hourglass.checkpoint")


class DiskFull(HourglassError):
    """A checkpoint did not fit on its disk; retrying on the same disk cannot help."""

    exit_code = EXIT_DISK_FULL
    fail_reason = "disk_full"


def _digest(obj: Any, h: Any) -> None:
    """Feed ``obj`` (tensors, mappings, sequences, plain values) into hash ``h``, tensors as
    their CPU bytes: the same state hashes the same whatever device it was saved from."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode())
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def checksum(state: dict[str, Any]) -> str:
    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != CHECKSUM_KEY}, h)
    return h.hexdigest()


def _free_bytes(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "unknown"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    return "unknown"


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (plus its checksum) to ``path`` atomically (see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({**state, CHECKSUM_KEY: checksum(state)}, buffer)
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # a partial file would keep the disk full for everyone
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(
                f"checkpoint folder {path.parent}: no space left on device ({_free_bytes(path.parent)} "
                f"free, {buffer.getbuffer().nbytes:,} bytes needed); free some or use "
                "--checkpoint-dir on a disk with room"
            ) from None
        raise
    try:  # the rename itself survives a power cut only once the folder is on the disk
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass  # some file systems cannot fsync a folder; the data itself is already there


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, every tensor on the CPU; None if there is none, or if it
    is unreadable or fails its checksum (then it is set aside and logged).

    The RNG states must be CPU ByteTensors (``torch.set_rng_state`` and
    ``Generator.set_state`` refuse anything else); weights and optimizer state are copied
    onto the model's device by ``load_state_dict``. Tensors and plain data only
    (``weights_only``): a checkpoint cannot run code.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or "epoch" not in state or "history" not in state:
            raise ValueError("not an epoch checkpoint")
        stored = state.pop(CHECKSUM_KEY, None)  # checkpoints written before checksums have none
        if stored is not None and stored != checksum(state):
            raise ValueError("its content does not match its checksum")
    except Exception as exc:  # a torn zip (RuntimeError), an empty file (EOFError), a bad pickle ...
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            os.replace(path, aside)
        except OSError:
            path.unlink(missing_ok=True)
        _log.warning(
            "checkpoint %s is unreadable (%s: %s); set aside as %s, starting from scratch",
            path,
            exc.__class__.__name__,
            " ".join(str(exc).split())[:200],
            aside.name,
        )
        return None
    return state
