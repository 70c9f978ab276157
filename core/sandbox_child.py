"""One sandbox process: runs tenants' JavaScript transformations, one at a time, each in a
fresh QuickJS context with a memory, stack and CPU-time limit.

Started by `core/sandbox.py` as `python -m core.sandbox_child`; requests and replies are JSON
frames (a 4-byte big-endian length, then the document) on stdin and stdout. The process holds
nothing of any tenant between calls: a context lives for one call. Whatever the engine cannot
interrupt (a regular expression that backtracks for minutes) ends with the parent killing this
process, so nothing here needs to be trusted to stop.
"""

from __future__ import annotations

import json
import re
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

import quickjs

# A ceiling for the whole process, under the engine's own per-context limit.
ADDRESS_SPACE_BYTES = 2 << 30
STACK_BYTES = 512 * 1024
FRAME = struct.Struct(">I")

# Runs before the tenant's code in every context: time stands still at the call's moment (no
# clock to measure another tenant or the host by), no code from strings, no shared memory.
PRELUDE = """
(() => {
  const now = %d;
  const RealDate = Date;
  class FixedDate extends RealDate {
    constructor(...args) { if (args.length === 0) { super(now); } else { super(...args); } }
    static now() { return now; }
  }
  globalThis.Date = FixedDate;
  const refuse = () => { throw new EvalError("code generation from strings is not allowed"); };
  for (const f of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(f), "constructor",
                          { value: refuse, writable: false, configurable: false });
  }
  globalThis.eval = refuse;
  globalThis.Function = refuse;
  for (const name of ["__date_clock", "SharedArrayBuffer", "Atomics"]) { delete globalThis[name]; }
})();
"""

# Calls the handler on the input and returns its JSON; frames of this function are not the
# tenant's and are skipped when an error's line is reported.
CALL = """
function __eventgate_call(input) {
  const result = handler(JSON.parse(input));
  if (result instanceof Promise) { throw new TypeError("handler must return the webhook, not a Promise"); }
  return JSON.stringify(result === undefined ? null : result);
}
"""

LINE = re.compile(r"at ([^\s(]+) \(<input>:(\d+)\)|at <input>:(\d+)")


def main() -> None:
    """Answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends this process, not Ctrl-C
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    reader, writer = sys.stdin.buffer, sys.stdout.buffer
    _write_frame(writer, {"ready": True})  # the parent times calls from here, not from exec
    while (request := _read_frame(reader)) is not None:
        _write_frame(writer, run(json.loads(request)))


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Load the code in a fresh context and, unless only checked, call its handler."""
    ctx = quickjs.Context()
    ctx.set_memory_limit(request["memory"])
    ctx.set_max_stack_size(STACK_BYTES)
    ctx.set_time_limit(request["cpu_ms"] / 1000)
    try:
        ctx.eval(PRELUDE % int(request["now_ms"]))
        ctx.eval(CALL)
    except quickjs.JSException as exc:  # the engine could not even start: not the tenant's
        return {"ok": False, "error": f"the sandbox failed to start: {exc}", "line": None}
    try:
        ctx.eval(request["code"])
        if ctx.eval("typeof handler") != "function":
            return {"ok": False, "error": "the code must define function handler(webhook)"}
    except (quickjs.JSException, quickjs.StackOverflow) as exc:
        return _failure(exc)
    if request.get("check_only"):
        return {"ok": True, "output": None}
    try:
        output = ctx.get("__eventgate_call")(request["input"])
    except (quickjs.JSException, quickjs.StackOverflow) as exc:
        return _failure(exc)
    if not isinstance(output, str):
        return {"ok": False, "error": "handler's result could not be written as JSON"}
    if len(output) > request["max_output"]:
        return {"ok": False, "error": f"the result is larger than {request['max_output']} bytes"}
    return {"ok": True, "output": output}


def _failure(exc: BaseException) -> dict[str, Any]:
    """The error's first line, and the line of the tenant's code it came from."""
    text = str(exc)
    message = text.split("\n", 1)[0][:500]
    if "interrupted" in message:
        message = "the transformation used more than its CPU time"
    elif "out of memory" in message:
        message = "the transformation used more than its memory"
    elif "stack overflow" in message:
        message = "the transformation recursed too deeply (stack overflow)"
    for match in LINE.finditer(text):
        function, line, top_level = match.groups()
        if function != "__eventgate_call":
            return {"ok": False, "error": message, "line": int(line or top_level)}
    return {"ok": False, "error": message, "line": None}


def _write_frame(writer: BinaryIO, document: dict[str, Any]) -> None:
    payload = json.dumps(document).encode()
    writer.write(FRAME.pack(len(payload)) + payload)
    writer.flush()


def _read_frame(reader: BinaryIO) -> bytes | None:
    header = reader.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (size,) = FRAME.unpack(header)
    return reader.read(size)


if __name__ == "__main__":
    main()
