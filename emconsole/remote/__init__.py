"""The only place PowerShell text is produced: validation, quoting, constant bodies, result parsing.

Engine-facing API: ``build_*`` -> ``RemoteScript`` (``.text``, ``.sha256``, ``.encoded_arguments()``),
``parse_document`` / ``parse_status`` -> document models, ``results`` -> domain models.
"""

from emconsole.remote.documents import OutputNotUnderstood, parse_document, parse_status
from emconsole.remote.scripts import (
    RemoteScript,
    ScriptTooLong,
    build_block,
    build_delete,
    build_reapply,
    build_restore,
    build_set_enabled,
    build_status,
    build_test_ocs,
    build_unblock,
    command_arguments,
    command_line,
    encode_command,
)
from emconsole.remote.validate import InvalidInput, new_backup_id

__all__ = [
    "InvalidInput",
    "OutputNotUnderstood",
    "RemoteScript",
    "ScriptTooLong",
    "build_block",
    "build_delete",
    "build_reapply",
    "build_restore",
    "build_set_enabled",
    "build_status",
    "build_test_ocs",
    "build_unblock",
    "command_arguments",
    "command_line",
    "encode_command",
    "new_backup_id",
    "parse_document",
    "parse_status",
]
