"""One window per storage folder: a second launch hands its files to the first and quits."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

_WAIT_MS = 2000


class SingleInstance(QObject):
    """The first launch listens on a local socket named after its storage folder (and user); a
    later launch with the same folder connects, sends the files it was given, and quits."""

    files_received = Signal(list)  # absolute paths (maybe none): show the window, choose them

    def __init__(self, storage: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        key = f"{getpass.getuser()}\0{Path(storage).resolve()}".encode("utf-8", "replace")
        self.name = f"sales-csv-{hashlib.sha256(key).hexdigest()[:20]}"
        self._server: QLocalServer | None = None

    def hand_over(self, files: list[str]) -> bool:
        """Gives files to a window already running on this storage; False when there is none."""
        socket = QLocalSocket()
        socket.connectToServer(self.name)
        if not socket.waitForConnected(_WAIT_MS):
            return False
        message = json.dumps([os.path.abspath(os.path.expanduser(f)) for f in files])
        socket.write(message.encode("utf-8") + b"\n")
        socket.flush()
        handed = socket.waitForBytesWritten(_WAIT_MS) or socket.bytesToWrite() == 0
        socket.disconnectFromServer()
        return handed

    def listen(self) -> None:
        """Takes later launches' files from now on (a socket left by a crashed launch is
        removed first)."""
        QLocalServer.removeServer(self.name)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._server.listen(self.name)

    def _accept(self) -> None:
        while self._server is not None and self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            buffer = bytearray()

            def read(socket=socket, buffer=buffer) -> None:
                buffer.extend(bytes(socket.readAll().data()))
                if buffer.endswith(b"\n"):
                    self._received(bytes(buffer))
                    buffer.clear()

            socket.readyRead.connect(read)
            socket.disconnected.connect(socket.deleteLater)
            if socket.bytesAvailable():
                read()

    def _received(self, message: bytes) -> None:
        try:
            files = json.loads(message)
        except ValueError:
            return  # not one of ours
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            self.files_received.emit(files)
