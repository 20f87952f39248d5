"""An auto-advance condition read as data: a domain, never code."""

import ast
import datetime

from dateutil.relativedelta import relativedelta

# what a condition may call: data helpers returning dates, nothing that
# reaches a record, the environment or Python's internals
CONDITION_FUNCTIONS = {
    "relativedelta": relativedelta,
    "timedelta": datetime.timedelta,
}
CONDITION_DATE_METHODS = {"strftime", "isoformat"}
CONDITION_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b}


def parse_condition(text, uid, today):
    """The condition ``text`` as a domain (a list), read as data.

    Like crm's team domains (``ast.literal_eval``), plus what Odoo's domain
    editor writes: ``uid``, ``context_today()`` and date arithmetic on it
    (``relativedelta``, ``.strftime``). No record, environment or callable
    other than these ever reaches it: a condition is data, not code.

    :raise ValueError: naming what is not allowed
    """
    tree = ast.parse((text or "[]").strip(), mode="eval")
    names = {"uid": uid}

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(
            node.value, (str, int, float, bool, type(None))
        ):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            operand = value(node.operand)
            if isinstance(node.op, ast.Not):
                return not operand
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in CONDITION_OPERATORS:
            return CONDITION_OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.Call):
            args = [value(arg) for arg in node.args]
            kwargs = {kw.arg: value(kw.value) for kw in node.keywords if kw.arg}
            if len(kwargs) != len(node.keywords):
                raise ValueError("**arguments are not allowed")
            func = node.func
            if isinstance(func, ast.Name) and func.id == "context_today" and not args:
                return today
            if isinstance(func, ast.Name) and func.id in CONDITION_FUNCTIONS:
                if not all(isinstance(arg, (int, float)) for arg in [*args, *kwargs.values()]):
                    raise ValueError(f"{func.id}() takes numbers only")
                return CONDITION_FUNCTIONS[func.id](*args, **kwargs)
            if isinstance(func, ast.Attribute) and func.attr in CONDITION_DATE_METHODS:
                target = value(func.value)
                if isinstance(target, datetime.date) and all(isinstance(a, str) for a in args):
                    return getattr(target, func.attr)(*args)
        raise ValueError(f"“{ast.unparse(node)}” is not allowed in a condition")

    result = value(tree.body)
    if not isinstance(result, (list, tuple)):
        raise ValueError("a condition is a list of criteria")  # noqa: TRY004 - caught as ValueError
    return list(result)
