"""`python -m services.reports` runs the service; `rebuild` replays the topics into a fresh
schema; `check [PRACTICE_ID]` compares the journal's receivables with billing's balances."""

import asyncio
import sys

from shared.settings import get_settings


def main(argv: list[str]) -> int:
    settings = get_settings()
    if argv[:1] == ["rebuild"]:
        from services.reports.rebuild import rebuild

        return asyncio.run(rebuild(settings))
    if argv[:1] == ["check"]:
        from services.reports.check import run_check

        return asyncio.run(run_check(settings, argv[1] if len(argv) > 1 else None))
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    from services.reports.app import build

    svc, app = build(settings)
    svc.run(app)
    return 0


sys.exit(main(sys.argv[1:]))
