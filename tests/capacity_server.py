"""An HTTP/1.1 server of known capacity: ``slots`` requests served at once, each taking
``service_s`` s, so at most slots / service_s requests/s (more wait in a queue).

Run in a thread by a test fixture (``CapacityServer``); loopback only.
"""

from __future__ import annotations

import asyncio
import threading

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class CapacityServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url`` is its base URL."""

    def __init__(self, slots: int = 4, service_s: float = 0.02) -> None:
        self.slots, self.service_s = slots, service_s
        self.capacity = slots / service_s  # requests/s
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.served = 0

    def start(self) -> CapacityServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        port = fut.result(timeout=10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _start(self) -> int:
        self._sem = asyncio.Semaphore(self.slots)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        return self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                async with self._sem:
                    await asyncio.sleep(self.service_s)
                self.served += 1
                writer.write(_RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
