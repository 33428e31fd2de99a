# A bare ASGI app (no framework) for the supervisor's asgi test.
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    text = "hello from asgi %s %s vm=%s body=%s" % (
        scope["method"], scope["path"], os.environ.get("ALEPH_ADDRESS_TO_USE", ""), body.decode())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-test", b"asgi")]})
    await send({"type": "http.response.body", "body": text.encode()})
