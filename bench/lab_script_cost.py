"""CPU the lab spends running each of the console's scripts (ExchangeHost in this process, no wire).

    python bench/lab_script_cost.py [--runs 20]

One organisation and one host, as in ``emconsole lab``; each script builder of
``emconsole.remote.scripts`` gets its own servers so every run finds the state it expects (what a
script needs first, e.g. a block before an unblock, runs untimed). Per builder, in ms of CPU
(``time.process_time``):

- first run: the first script of its kind in the process (parse, subset check, compile, run);
- per run: the median over ``--runs`` servers of running it for a server it was not run for before
  (its own text: the server name, IDs and backup ID are in the text), as a fleet action does;
- again: the median of running the very same text again (read-only scripts), as every refresh does;
- and the ratio of per run to first run.
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
BLOCK = ["M2", "M2.1.0"]

Builder = Callable[[str], RemoteScript]


def backup_id(server: str) -> str:
    return f"20260803T090000Z-{int(server[2:]):08x}"


#: name -> (the script, what must run before it untimed, whether running it again changes nothing)
SCRIPTS: dict[str, tuple[Builder, Builder | None, bool]] = {
    "status": (lambda n: S.build_status(n, "snapin"), None, True),
    "block": (lambda n: S.build_block(n, "snapin", BLOCK, []), None, False),
    "unblock": (
        lambda n: S.build_unblock(n, "snapin", BLOCK, BLOCK),
        lambda n: S.build_block(n, "snapin", BLOCK, []),
        False,
    ),
    "reapply": (S.build_reapply, None, False),
    "delete": (lambda n: S.build_delete(n, "snapin", ["M2"], backup_id(n), block_ids=BLOCK), None, False),
    "restore": (
        lambda n: S.build_restore(n, backup_id(n)),
        lambda n: S.build_delete(n, "snapin", ["M2"], backup_id(n), block_ids=BLOCK),
        False,
    ),
    "set_enabled": (lambda n: S.build_set_enabled(n, "snapin", "server", False), None, False),
    "test_ocs": (lambda n: S.build_test_ocs(n, "snapin"), None, True),
    "discover": (lambda n: S.build_discover(n, "snapin"), None, True),
}


def run(host: ExchangeHost, name: str, script: RemoteScript, timed: bool = True) -> float:
    """ms of CPU for one run of ``script`` on server ``name``; checks that it did its work."""
    request = CommandRequest("powershell.exe", script.text)
    started = time.process_time()
    result = host.run(request, ShellContext(name, "bench", 65001))
    spent = time.process_time() - started
    document = json.loads(result.stdout.decode("utf-8"))
    if timed and (result.exit_code != 0 or document["code"] != ""):
        raise SystemExit(f"{script.operation} on {name}: exit {result.exit_code}, {document['code']!r}")
    return spent * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="servers per builder after the first")
    args = parser.parse_args()
    per_builder = args.runs + 1
    names = [f"EX{i:03d}" for i in range(per_builder * len(SCRIPTS))]
    org = build_org(org_spec({}, {n: ExchangeServerSpec(build=BUILD) for n in names}, seed=1))
    host = ExchangeHost(org)
    print(f"{len(names)} servers; ms CPU per run (medians)")
    print(f"{'script':<12} {'first run':>10} {'per run':>9} {'again':>8} {'per run / first':>16}")
    for index, (operation, (script, before, repeatable)) in enumerate(SCRIPTS.items()):
        mine = names[index * per_builder : (index + 1) * per_builder]
        for name in mine:
            if before is not None:
                run(host, name, before(name), timed=False)
        first = run(host, mine[0], script(mine[0]))
        later = statistics.median(run(host, name, script(name)) for name in mine[1:])
        again = (
            f"{statistics.median(run(host, mine[0], script(mine[0])) for _ in range(args.runs)):5.2f} ms"
            if repeatable
            else "       -"
        )
        print(f"{operation:<12} {first:7.1f} ms {later:6.2f} ms {again} {later / first:16.3f}")


if __name__ == "__main__":
    main()
