"""The benchmark's no-op, as a Switchyard Python algorithm: the Rust `echo`'s answer, so all
three designs get the same tasks and give the same results."""

from switchyard import algorithm


@algorithm
async def echo(text: str) -> dict[str, object]:
    return {"text": text, "length": len(text)}
