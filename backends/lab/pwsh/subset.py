"""The static gate: a script with any construct outside POWERSHELL-SUBSET.md is refused before it runs.

Checking the whole tree first means a refused script has no side effects at all (never half-run),
and the refusal names the construct and its position in PowerShell's error layout.
"""

from __future__ import annotations

from emconsole.backends.lab.pwsh.api import ErrorRecord
from emconsole.backends.lab.pwsh.syntax import ParsedScript, SyntaxNode, syntax_tree

ALLOWED_NODES = frozenset(
    {
        "program",
        "statement_list",
        "pipeline",
        "pipeline_chain",
        "assignment_expression",
        "left_assignment_expression",
        "assignment_operator",
        "assignment_value",
        "unary_expression",
        "variable",
        "braced_variable",
        "string_literal",
        "verbatim_string_characters",
        "expandable_string_literal",
        "verbatim_here_string_characters",
        "expandable_here_string_literal",
        "escape_character",
        "integer_literal",
        "decimal_integer_literal",
        "hexadecimal_integer_literal",
        "real_literal",
        "array_expression",
        "array_literal_expression",
        "hash_literal_expression",
        "hash_literal_body",
        "hash_entry",
        "key_expression",
        "simple_name",
        "parenthesized_expression",
        "sub_expression",
        "script_block_expression",
        "script_block",
        "script_block_body",
        "member_access",
        "member_name",
        "invocation_expression",
        "argument_list",
        "argument_expression_list",
        "argument_expression",
        "element_access",
        "expression_with_unary_operator",
        "cast_expression",
        "type_literal",
        "type_spec",
        "type_name",
        "type_identifier",
        "array_type_name",
        "comparison_expression",
        "comparison_argument_expression",
        "comparison_operator",
        "logical_expression",
        "logical_argument_expression",
        "additive_expression",
        "additive_argument_expression",
        "if_statement",
        "elseif_clauses",
        "elseif_clause",
        "else_clause",
        "statement_block",
        "foreach_statement",
        "try_statement",
        "catch_clauses",
        "catch_clause",
        "flow_control_statement",
        "empty_statement",
        "comment",
        "command",
        "command_name",
        "command_name_expr",
        "path_command_name",
        "path_command_name_token",
        "command_elements",
        "command_argument_sep",
        "command_parameter",
        "generic_token",
        "bareword_argument_list",
        "redirection",
        "merging_redirection_operator",
        "command_invocation_operator",
    }
)

COMPARISON_OPERATORS = frozenset(
    {
        "-eq",
        "-ne",
        "-gt",
        "-ge",
        "-lt",
        "-le",
        "-like",
        "-notlike",
        "-match",
        "-notmatch",
        "-in",
        "-notin",
        "-contains",
    }
)
UNARY_OPERATORS = frozenset({"-not", "!", "-"})
MERGING_REDIRECTIONS = frozenset({"2>&1", "3>&1", "6>&1", "*>&1"})
METHODS = frozenset({"tostring", "touniversaltime", "trim", "split"})
CAST_TYPES = {
    "string": "string",
    "system.string": "string",
    "int": "int",
    "int32": "int",
    "system.int32": "int",
    "bool": "bool",
    "boolean": "bool",
    "system.boolean": "bool",
    "datetime": "datetime",
    "system.datetime": "datetime",
    "string[]": "string[]",
    "system.string[]": "string[]",
    "pscustomobject": "pscustomobject",
    "system.management.automation.pscustomobject": "pscustomobject",
    "ordered": "ordered",
}
STATIC_MEMBERS = {
    ("text.encoding", "utf8"),
    ("system.text.encoding", "utf8"),
    ("console", "outputencoding"),
    ("system.console", "outputencoding"),
}
#: automatic variables the lab does not emulate (a user variable of any other name is fine)
REFUSED_VARIABLES = frozenset(
    {
        "executioncontext",
        "host",
        "psversiontable",
        "psscriptroot",
        "pscommandpath",
        "myinvocation",
        "pscmdlet",
        "error",
        "args",
        "input",
        "lastexitcode",
        "pwd",
        "profile",
        "psboundparameters",
        "stacktrace",
        "pshome",
        "shellid",
    }
)
VARIABLE_SCOPES = ("global:", "script:", "local:")


def type_key(literal_text: str) -> str:
    """``[System.String[]]`` -> ``system.string[]`` (the text between the brackets, lower case)."""
    return literal_text[1:-1].strip().replace(" ", "").lower()


def variable_name(text: str) -> str:
    """``$x`` / ``${x}`` / ``$script:x`` -> ``x``; ``$env:NAME`` stays ``env:NAME``."""
    name = text[1:]
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1]
    for scope in VARIABLE_SCOPES:
        if name.lower().startswith(scope):
            return name[len(scope) :]
    return name


def _refusal(original: str, node: SyntaxNode, what: str) -> ErrorRecord:
    line = original.count("\n", 0, node.start) + 1
    column = node.start - (original.rfind("\n", 0, node.start) + 1) + 1
    return ErrorRecord(
        message=f"At line:{line} char:{column}\n{what} is not supported by the lab's PowerShell "
        "(outside POWERSHELL-SUBSET.md).",
        fully_qualified_error_id="NotSupportedInLab,ParseException",
        category="ParserError",
        exception_type="System.Management.Automation.ParseException",
    )


def _check(original: str, node: SyntaxNode) -> str | None:
    """What is wrong with this one node (its children are checked separately), or None."""
    kind = node.type
    if not node.is_named:
        return None
    text = original[node.start : node.end]
    if kind not in ALLOWED_NODES:
        return f"'{kind.replace('_', ' ')}' ('{text[:30]}')"
    if kind == "assignment_operator" and text != "=":
        return f"The assignment operator '{text}'"
    if kind == "comparison_operator" and text.lower() not in COMPARISON_OPERATORS:
        return f"The operator '{text}'"
    if kind in ("logical_expression", "logical_argument_expression"):
        bad = [c.type for c in node.children if not c.is_named and c.type.lower() not in ("-and", "-or")]
        if bad:
            return f"The operator '{bad[0]}'"
    if kind in ("additive_expression", "additive_argument_expression"):
        bad = [c.type for c in node.children if not c.is_named and c.type != "+"]
        if bad:
            return f"The operator '{bad[0]}'"
    if kind == "expression_with_unary_operator":
        first = node.children[0]
        if not first.is_named and first.type.lower() not in UNARY_OPERATORS:
            return f"The unary operator '{first.type}'"
    if kind == "flow_control_statement" and node.children[0].type.lower() != "exit":
        return f"The '{node.children[0].type}' statement"
    if kind == "redirection" and text.replace(" ", "") not in MERGING_REDIRECTIONS:
        return f"The redirection '{text}'"
    if kind == "catch_clause" and any(c.type == "catch_type_list" for c in node.children):
        return "A typed catch clause"
    if kind == "variable":
        name = variable_name(text).lower()
        if name in REFUSED_VARIABLES:
            return f"The automatic variable '{text}'"
        if ":" in name and not name.startswith("env:"):
            return f"The variable drive of '{text}'"
    if kind == "cast_expression" and node.children:
        literal = original[node.children[0].start : node.children[0].end]
        if type_key(literal) not in CAST_TYPES:
            return f"The type '{literal}'"
    if kind == "member_access" and any(c.type == "::" for c in node.children):
        target, member = node.children[0], node.children[-1]
        if (
            target.type != "type_literal"
            or (type_key(original[target.start : target.end]), original[member.start : member.end].lower())
            not in STATIC_MEMBERS
        ):
            return f"The static member '{text}'"
    if kind == "member_name" and (
        len(node.named_children) != 1 or node.named_children[0].type != "simple_name"
    ):
        return f"The dynamic member name '{text}'"
    if kind == "invocation_expression":
        if any(c.type == "::" for c in node.children):
            return f"The static method call '{text[:40]}'"
        method = next((c for c in node.children if c.type == "member_name"), None)
        method_name = original[method.start : method.end] if method is not None else None
        if method_name is None or method_name.lower() not in METHODS:
            return f"The method '{method_name if method_name is not None else text[:30]}'"
    if (
        kind == "type_literal"
        and node.parent_type is not None
        and node.parent_type not in ("cast_expression", "member_access")
    ):
        return f"The type literal '{text}'"
    return None


def first_refusal(original: str, root: SyntaxNode) -> ErrorRecord | None:
    """The first out-of-subset construct in document order, or None when all is in."""
    stack = [root]
    while stack:
        node = stack.pop()
        problem = _check(original, node)
        if problem is not None:
            return _refusal(original, node, problem)
        stack.extend(reversed(node.children))
    return None


def refusal(parsed: ParsedScript) -> ErrorRecord | None:
    """The first out-of-subset construct, as a PowerShell-shaped parse-time error; None when all is in."""
    return first_refusal(parsed.original, syntax_tree(parsed))
