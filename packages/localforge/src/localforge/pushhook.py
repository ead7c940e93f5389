"""git's ``proc-receive`` hook for pushes over smart HTTP to a repository with protected branches.

Run by ``git receive-pack`` as a script (standard library only, no package imports). It speaks the
hook's pkt-line protocol (see ``githooks(5)``): it reads the ref updates git hands it, asks the forge at
``$LOCALFORGE_PUSH_CHECK_URL`` which of them to refuse, and for each refused ref prints GitHub's
``GH006`` lines (shown to the pusher as ``remote: ...``) and answers ``ng <ref> protected branch hook
declined``, which git reports as `` ! [remote rejected] main -> main (protected branch hook declined)``.
Every other ref is handed back to git to update as usual (``option fall-through``). If the forge cannot be
asked, every ref is refused.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import BinaryIO

URL_ENV = "LOCALFORGE_PUSH_CHECK_URL"
DECLINED = "protected branch hook declined"


def read_pkt(stream: BinaryIO) -> bytes | None:
    """One pkt-line's payload, or None for a flush packet."""
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError("receive-pack closed the hook's input")
    size = int(head, 16)
    return None if size == 0 else stream.read(size - 4)


def write_pkt(stream: BinaryIO, text: str) -> None:
    data = text.encode() + b"\n"
    stream.write(b"%04x" % (len(data) + 4) + data)


def ask_forge(commands: list[list[str]]) -> dict[str, list[str]]:
    """``{ref: [reasons]}`` from the forge (127.0.0.1 only: proxies are never used)."""
    request = urllib.request.Request(  # noqa: S310 - the forge's own http://127.0.0.1 URL
        os.environ[URL_ENV],
        data=json.dumps({"commands": commands}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=60) as response:
        verdict = json.load(response)["refs"]
    return {str(ref): [str(r) for r in reasons] for ref, reasons in verdict.items()}


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while read_pkt(stdin) is not None:  # "version=1\0<features>"; no push options are asked for
        pass
    write_pkt(stdout, "version=1")
    stdout.write(b"0000")
    stdout.flush()
    commands: list[list[str]] = []
    while (line := read_pkt(stdin)) is not None:
        old, new, ref = line.decode().rstrip("\n").split(" ", 2)
        commands.append([old, new, ref])
    try:
        verdict = ask_forge(commands)
    except Exception as exc:
        verdict = {ref: [f"LocalForge could not check the push: {exc}"] for _, _, ref in commands}
    for _, _, ref in commands:
        reasons = verdict.get(ref, [])
        if reasons:
            print(f"error: GH006: Protected branch update failed for {ref}.", file=sys.stderr)
            print("", file=sys.stderr)
            for reason in reasons:
                print(f"- {reason}", file=sys.stderr)
            write_pkt(stdout, f"ng {ref} {DECLINED}")
        else:
            write_pkt(stdout, f"ok {ref}")
            write_pkt(stdout, "option fall-through")
    stdout.write(b"0000")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
