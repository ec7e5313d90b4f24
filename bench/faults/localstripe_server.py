"""localstripe with its state in a file of our choosing (it hard-codes /tmp/localstripe.pickle,
which the shared instance uses too), written atomically so a SIGKILL mid-write cannot leave a
torn file. `python -m bench.faults.localstripe_server --port P --state FILE [--from-scratch]`."""

import argparse
import os
import pickle
import sys

from localstripe import resources, server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--from-scratch", action="store_true")
    args = parser.parse_args()

    def load(store: resources.Store) -> None:
        try:
            with open(args.state, "rb") as f:
                old = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(old)

    def dump(store: resources.Store) -> None:
        tmp = f"{args.state}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, args.state)

    resources.Store.try_load_from_disk = load  # type: ignore[method-assign]
    resources.Store.dump_to_disk = dump  # type: ignore[method-assign]
    sys.argv = [sys.argv[0], "--port", str(args.port)] + (["--from-scratch"] if args.from_scratch else [])
    server.start()


if __name__ == "__main__":
    main()
