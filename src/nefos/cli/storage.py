"""``nefos storage``: check the file store against the database, and collect garbage.

Both run against a live deployment: ``fsck`` only reads, and ``gc`` deletes only maps and
blocks that no version references and that were last put more than ``--grace`` seconds
ago, so uploads in flight survive it (``nefos.storage.maintenance`` argues why). The API
processes run the same gc every ``[storage] gc_seconds``; this is the pass by hand.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from nefos.cli.common import ConfigFile, DataDir, err, out, with_engines
from nefos.server.engines import Engines
from nefos.storage.maintenance import FsckReport, GcReport, fsck, gc

storage_app = typer.Typer(help="File storage maintenance.", no_args_is_help=True)

SHOWN = 5  # orphan names printed before "and N more" (--json lists them all)


@storage_app.command("fsck")
def storage_fsck(
    deep: Annotated[
        bool, typer.Option("--deep", help="Also read every block and check its hash (slow)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Check every version's map and blocks against the store; list orphans.

    The blocks of volume maps and of builds in flight are checked too, and are no orphans;
    so are the extents volume maps name (the blocks volumes own, written in place).

    Exits 1 when a version has a problem; orphans are gc's work, not problems.
    """

    async def check(e: Engines) -> FsckReport:
        report = await fsck(e.db, e.store, deep=deep, pinned=e.block_pins)
        report.problems += await e.volumes.check_extents()
        return report

    report = with_engines(config, data_dir, check)
    if as_json:
        out.print_json(json.dumps({**asdict(report), "clean": report.clean}))
    else:
        _print_fsck(report)
    if not report.clean:
        raise typer.Exit(1)


def _print_fsck(report: FsckReport) -> None:
    how = "deep: every block read and hashed" if report.deep else "presence of blocks"
    out.print(
        f"checked {report.versions} versions, {report.maps} maps, {report.blocks} blocks ({how})"
    )
    if report.problems:
        table = Table("serial", "path", "problem", "detail", "blocks")
        for p in report.problems:
            shown = ", ".join(p.blocks[:3]) + (" ..." if len(p.blocks) > 3 else "")
            table.add_row(str(p.serial), p.path, p.kind, p.detail, shown)
        out.print(table)
        err.print(f"[red]{len(report.problems)} problems[/red]")
    else:
        out.print("no problems")
    _print_names("orphan maps", report.orphan_maps)
    _print_names("orphan blocks", report.orphan_blocks)


def _print_names(what: str, names: list[str]) -> None:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    listed = f": {', '.join(names[:SHOWN])}{more}" if names else ""
    out.print(f"{what}: {len(names)}{listed}")


@storage_app.command("gc")
def storage_gc(
    grace: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Keep what was put in the last SECONDS (longer than any upload) "
            "(default: the setting storage.gc_grace_seconds, 3600)",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be deleted, delete nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Delete unreferenced maps and blocks older than the grace period.

    What a server's build in flight still reads (the image it was created from) stays,
    and so does every block a volume's map names.

    Blocks uploaded on their own and since collected or used by a version stop being
    charged to their account.

    Exits 1 if blocks were left alone because a referenced map cannot be read (run fsck).
    """

    async def work(e: Engines) -> GcReport:
        seconds = e.settings.storage.gc_grace_seconds if grace is None else grace
        return await gc(
            e.db,
            e.store,
            grace=dt.timedelta(seconds=seconds),
            dry_run=dry_run,
            pinned=e.block_pins,
            quotas=e.quotas,
        )

    report = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(_gc_record(report)))
    else:
        verb = "would delete" if report.dry_run else "deleted"
        out.print(f"{verb} {len(report.maps)} maps and {len(report.blocks)} blocks")
        if report.maps_kept or report.blocks_kept:
            out.print(
                f"kept {report.maps_kept} maps and {report.blocks_kept} blocks that no version "
                f"references: put in the last {report.grace.total_seconds():g} seconds, or "
                "referenced again meanwhile"
            )
        if report.uploads:
            verb = "would release" if report.dry_run else "released"
            out.print(f"{verb} the charge of {report.uploads} uploaded blocks")
    if report.stopped:
        err.print(f"[red]error:[/red] {report.stopped}")
        raise typer.Exit(1)


def _gc_record(report: GcReport) -> dict[str, Any]:
    record = asdict(report)
    record["grace"] = report.grace.total_seconds()
    return record
