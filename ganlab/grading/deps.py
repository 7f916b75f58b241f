"""Which notebook cells a check needs: the cells that bind the names it uses, transitively.

Grading runs only those (plus every exercise cell) instead of whole notebooks: the
plots and demos between the checks cost time and change no check's result. The
analysis is static (``ast`` and ``symtable``) and errs on the side of running a cell:

* a cell binds a name if it assigns, imports, defines it, or changes it in place
  (``x.attr = ...``, ``x[i] = ...``, ``x.method(...)`` on a line of its own);
* a name stops being needed further up only when a top-level statement binds it
  unconditionally (``x = ...``, ``import x``, ``def x``), not inside an ``if`` or a loop,
  and before the cell reads it (the body of a function runs after the whole cell);
* a cell that does not parse is always run (too deeply nested for the parser too: a
  student's ``a+a+...+a`` must fail in its own cell, not stop the grading of the rest).
"""

import ast
import symtable
from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    surely: frozenset  # bound unconditionally by a top-level statement
    maybe: frozenset  # bound or changed anywhere in the cell
    used: frozenset  # read before the cell binds them (functions it defines: read at all, unbound)


def strip_magics(source):
    """IPython magics and shell escapes become blank lines (line numbers are kept)."""
    return "".join(
        "\n" if line.lstrip().startswith(("%", "!")) else line
        for line in source.splitlines(keepends=True)
    )


_COMPREHENSIONS = {"listcomp", "setcomp", "dictcomp", "genexpr"}


def _global_reads(table):
    """(reads when the scope runs, reads deferred to later calls) of a nested symbol table."""
    now = table.get_type() == "class" or table.get_name() in _COMPREHENSIONS
    reads = {s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global()}
    immediate, deferred = (set(reads), set()) if now else (set(), set(reads))
    for child in table.get_children():
        i, d = _global_reads(child)
        (immediate if now else deferred).update(i)
        deferred |= d
    return immediate, deferred


def _loads(node):
    """Names read by ``node`` itself, not inside the functions, classes, comprehensions it makes."""
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        parts = [*getattr(node, "decorator_list", []), *node.args.defaults, *node.args.kw_defaults]
    elif isinstance(node, ast.ClassDef):
        parts = [*node.decorator_list, *node.bases, *node.keywords]
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        parts = [node.generators[0].iter]  # evaluated where the comprehension is
    else:
        parts = ast.iter_child_nodes(node)
    return set().union(*(_loads(p) for p in parts if p is not None))


def _surely_bound(stmt):
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and getattr(stmt, "value", None) is not None:
        return set().union(*map(_target_names, getattr(stmt, "targets", None) or [stmt.target]))
    return set()


def _target_names(target):
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return set().union(*map(_target_names, target.elts))
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return set()  # x.attr = ..., x[i] = ... need x from above


def names(source):
    """The :class:`Names` of a cell, or None when it does not parse (or nests too deeply)."""
    source = strip_magics(source)
    try:
        tree, table = ast.parse(source), symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    try:
        return _names(tree, table)
    except RecursionError:  # _loads and _global_reads recurse over the tree
        return None


def _names(tree, table):
    """The :class:`Names` of a parsed cell: its ``ast`` tree and ``symtable`` table."""
    scopes = [(child.get_lineno(), *_global_reads(child)) for child in table.get_children()]
    bound, used, later = set(), set(), set()
    for (
        stmt
    ) in tree.body:  # in order: a read counts only if nothing above it in the cell bound the name
        reads = _loads(stmt)
        for line, immediate, deferred in scopes:
            if stmt.lineno <= line <= stmt.end_lineno:
                reads |= immediate
                later |= deferred
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            reads.add(stmt.target.id)  # x += 1 reads x first
        used |= reads - bound
        bound |= _surely_bound(stmt)
    used |= later - bound  # function bodies run after the whole cell
    maybe = bound | {
        s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()
    }
    for node in ast.walk(tree):  # x.attr = ..., x[i] = ... change x
        if isinstance(node, (ast.Attribute, ast.Subscript)) and not isinstance(node.ctx, ast.Load):
            maybe |= _root_name(node.value)
    for stmt in tree.body:  # x.method(...) on a line of its own may change x
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            if isinstance(stmt.value.func, (ast.Attribute, ast.Subscript)):
                maybe |= _root_name(stmt.value.func.value)
    return Names(frozenset(bound), frozenset(maybe), frozenset(used))


def _root_name(node):
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def needed_cells(sources, targets, always=()):
    """Indices of ``sources`` to run so that the cells at ``targets`` find what they use.

    ``targets`` are included; cells in ``always`` are included but never needed for themselves.
    """
    infos = [names(s) for s in sources]
    needed, keep = set(), set()
    for index in range(len(sources) - 1, -1, -1):
        info = infos[index]
        if index in targets or index in always or info is None or info.maybe & needed:
            keep.add(index)
            if info is not None:
                needed = (needed - info.surely) | info.used
    return sorted(keep)
