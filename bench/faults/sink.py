"""The SMTP sink of the fault workload: aiosmtpd storing every accepted message in a Maildir
(so what it accepted survives its own crash), answering each DATA after a short pause so a
sender killed at a random moment is often killed mid-send.
`python -m bench.faults.sink --port P --maildir DIR`."""

import argparse
import asyncio
import mailbox
import random

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


class SlowMailbox(Mailbox):
    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(random.uniform(0.05, 0.4))
        return await super().handle_DATA(server, session, envelope)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    args = parser.parse_args()
    mailbox.Maildir(args.maildir, create=True)
    controller = Controller(SlowMailbox(args.maildir), hostname="127.0.0.1", port=args.port)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
