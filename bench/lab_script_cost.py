"""CPU the lab spends running each of the console's scripts (ExchangeHost, no wire, no threads).

    python bench/lab_script_cost.py [--runs 20] [--first 5]

For every script builder of ``emconsole.remote.scripts``: the first run of a script text (parse,
subset check and compile included, as for a new server's or a new action's script) and the cost of
each later run of the same text, in ms of CPU (``time.process_time``, median), and their ratio.
Every run gets a fresh organisation, brought untimed into the state the script expects, so a change
script does its real work each time (a block blocks, a delete deletes and writes its backup).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from emconsole.backends.lab.exchange.builder import build_org
from emconsole.backends.lab.exchange.host import ExchangeHost
from emconsole.backends.lab.exchange.spec import ExchangeServerSpec, org_spec
from emconsole.backends.lab.host import CommandRequest, ShellContext

from emconsole.remote import scripts as S
from emconsole.remote.scripts import RemoteScript

BUILD = "2019 CU15 Feb26SU"  # the EM service has applied M2.1.0: status and delete see its IIS rules
BACKUP = "20260803T090000Z-0badcafe"
BLOCK = ["M2", "M2.1.0"]

Builder = Callable[[str], RemoteScript]
#: name -> (the script, what must run before it, untimed)
SCRIPTS: dict[str, tuple[Builder, Builder | None]] = {
    "status": (lambda n: S.build_status(n, "snapin"), None),
    "block": (lambda n: S.build_block(n, "snapin", BLOCK, []), None),
    "unblock": (
        lambda n: S.build_unblock(n, "snapin", BLOCK, BLOCK),
        lambda n: S.build_block(n, "snapin", BLOCK, []),
    ),
    "reapply": (S.build_reapply, None),
    "delete": (lambda n: S.build_delete(n, "snapin", ["M2"], BACKUP, block_ids=BLOCK), None),
    "restore": (
        lambda n: S.build_restore(n, BACKUP),
        lambda n: S.build_delete(n, "snapin", ["M2"], BACKUP, block_ids=BLOCK),
    ),
    "set_enabled": (lambda n: S.build_set_enabled(n, "snapin", "server", False), None),
    "test_ocs": (lambda n: S.build_test_ocs(n, "snapin"), None),
    "discover": (lambda n: S.build_discover(n, "snapin"), None),
}


def run_once(names: list[str], name: str, script: Builder, before: Builder | None) -> float:
    """ms of CPU for one run of ``script(name)`` on a fresh organisation; checks it succeeded."""
    org = build_org(org_spec({}, {n: ExchangeServerSpec(build=BUILD) for n in names}, seed=1))
    host = ExchangeHost(org)
    context = ShellContext(name, "bench", 65001)
    if before is not None:
        host.run(CommandRequest("powershell.exe", before(name).text), context)
    request = CommandRequest("powershell.exe", script(name).text)
    started = time.process_time()
    result = host.run(request, context)
    spent = time.process_time() - started
    document = json.loads(result.stdout.decode("utf-8"))
    if result.exit_code != 0 or document["code"] != "":
        raise SystemExit(f"{script(name).operation} on {name}: exit {result.exit_code}, {document['code']!r}")
    return spent * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="later runs of the same text (default 20)")
    parser.add_argument("--first", type=int, default=5, help="first runs, one per new text (default 5)")
    args = parser.parse_args()
    names = [f"EX{i:02d}" for i in range(args.first + 1)]  # EX00 warms the process up, untimed
    print(f"{'script':<12} {'first run':>10} {'per run':>9} {'per run / first':>16}   (ms CPU, median)")
    for operation, (script, before) in SCRIPTS.items():
        run_once(names, names[0], script, before)
        first = [run_once(names, name, script, before) for name in names[1:]]
        later = [run_once(names, names[1], script, before) for _ in range(args.runs)]
        cold, warm = statistics.median(first), statistics.median(later)
        print(f"{operation:<12} {cold:8.1f} ms {warm:6.2f} ms {warm / cold:16.3f}")


if __name__ == "__main__":
    main()
