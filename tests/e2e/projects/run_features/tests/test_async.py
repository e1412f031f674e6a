import asyncio

import pytest
import pytest_asyncio


@pytest_asyncio.fixture
async def echo_server():
    async def handle(reader, writer):
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_echo(echo_server):
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    writer.write(b"ping\n")
    await writer.drain()
    assert await reader.readline() == b"ping\n"
    writer.close()


@pytest.mark.asyncio
async def test_sleep_and_gather():
    results = await asyncio.gather(*(asyncio.sleep(0, result=i) for i in range(3)))
    assert results == [0, 1, 2]


@pytest.mark.asyncio
async def test_async_failure():
    await asyncio.sleep(0)
    raise ValueError("async boom")
